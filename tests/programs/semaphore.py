"""20 threads share a resource that a ``Semaphore(5)`` admits five at a time."""

import json
import threading
import time

THREADS = 20
SLOTS = 5
HOLD = 0.2

slots = threading.Semaphore(SLOTS)
guard = threading.Lock()
inside = 0
peak = 0
served = []


def use(n):
    global inside, peak
    with slots:
        with guard:
            inside += 1
            peak = max(peak, inside)
        time.sleep(HOLD)
        with guard:
            inside -= 1
            served.append(n)


start = time.perf_counter()
threads = [threading.Thread(target=use, args=(n,)) for n in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.perf_counter() - start
print(json.dumps({"peak": peak, "served": sorted(served), "inside": inside, "elapsed": elapsed}))
