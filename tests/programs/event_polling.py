"""Worker threads poll an ``Event`` with ``wait(timeout)`` until the main thread sets it."""

import json
import threading
import time

POLLERS = 10
POLL = 0.05
RUN = 0.5

stop = threading.Event()
polls = [0] * POLLERS
lag = [None] * POLLERS  # seconds from set() to the poller noticing


def poll(n):
    while not stop.wait(timeout=POLL):
        polls[n] += 1
    lag[n] = time.perf_counter() - set_at


def wait_long(results):
    results.append(stop.wait(timeout=30))
    results.append(time.perf_counter() - set_at)


start = time.perf_counter()
unset_start = time.perf_counter()
unset = threading.Event().wait(timeout=0.1)  # nobody sets it
unset_waited = time.perf_counter() - unset_start

set_at = float("inf")
long_wait = []
threads = [threading.Thread(target=poll, args=(n,)) for n in range(POLLERS)]
threads.append(threading.Thread(target=wait_long, args=(long_wait,)))
for thread in threads:
    thread.start()
time.sleep(RUN)
set_at = time.perf_counter()
stop.set()
for thread in threads:
    thread.join()

print(
    json.dumps(
        {
            "unset": unset,
            "unset_waited": unset_waited,
            "polls": polls,
            "lag": lag,
            "long_wait": long_wait,
            "elapsed": time.perf_counter() - start,
            "is_set": stop.is_set(),
        }
    )
)
