"""Twenty ``threading.Timer``s of 0.3 s started together; every other one cancelled."""

import json
import threading
import time

TIMERS = 20
DELAY = 0.3

fired = {}


def fire(name):
    fired[name] = time.perf_counter() - start


start = time.perf_counter()
timers = [threading.Timer(DELAY, fire, args=(f"t{n}",)) for n in range(TIMERS)]
for timer in timers:
    timer.start()
for timer in timers[1::2]:
    timer.cancel()
for timer in timers:
    timer.join()
elapsed = time.perf_counter() - start
print(
    json.dumps(
        {
            "fired": sorted(fired, key=lambda name: int(name[1:])),
            "earliest": min(fired.values()),
            "elapsed": elapsed,
            "alive": [timer.is_alive() for timer in timers].count(True),
        }
    )
)
