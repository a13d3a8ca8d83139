"""``ThreadPoolExecutor.map`` over 20 calls that each take 0.3 s, with 20 workers."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

CALLS = 20
DELAY = 0.3

workers = set()


def square(n):
    workers.add(threading.current_thread().name)
    time.sleep(DELAY)
    return n * n


start = time.perf_counter()
with ThreadPoolExecutor(max_workers=CALLS) as pool:
    results = list(pool.map(square, range(CALLS)))
elapsed = time.perf_counter() - start
print(
    json.dumps(
        {
            "results": results,
            "elapsed": elapsed,
            "workers": len(workers),
            "worker_names_ok": all(name.startswith("ThreadPoolExecutor-") for name in workers),
            "active_after": threading.active_count(),
        }
    )
)
