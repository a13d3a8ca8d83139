"""A thread per request: 1000 threads that each sleep 2 s, and what the process looks like meanwhile."""

import json
import os
import threading
import time

THREADS = 1000
SLEEP = 2.0


def status_kib(field):
    """One ``Vm...`` line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def handle(n, answers):
    time.sleep(SLEEP)
    answers[n] = n * 2


answers = [None] * THREADS
rss_before = status_kib("VmRSS")
size_before = status_kib("VmSize")
start = time.perf_counter()
threads = [threading.Thread(target=handle, args=(n, answers), name=f"request-{n}") for n in range(THREADS)]
for thread in threads:
    thread.start()

# Every thread is sleeping now.
active = threading.active_count()
os_threads = len(os.listdir("/proc/self/task"))
rss_growth = status_kib("VmRSS") - rss_before
size_growth = status_kib("VmSize") - size_before

for thread in threads:
    thread.join()
elapsed = time.perf_counter() - start

print(
    json.dumps(
        {
            "elapsed": elapsed,
            "answers_ok": answers == [n * 2 for n in range(THREADS)],
            "active_while_sleeping": active,
            "active_after": threading.active_count(),
            "os_threads_while_sleeping": os_threads,
            "rss_growth_kib": rss_growth,
            "size_growth_kib": size_growth,
        }
    )
)
