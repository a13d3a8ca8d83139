"""threading.Thread workers over queue.Queue, stopped by sentinels; task_done and join."""

import queue
import threading
import time

jobs = queue.Queue()
results = queue.Queue()


def worker():
    while True:
        n = jobs.get()
        if n is None:
            jobs.task_done()
            break
        time.sleep(0.05)  # the "I/O" each job waits for
        results.put((n, n * n))
        jobs.task_done()


threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
for n in range(120):
    jobs.put(n)
jobs.join()
for _ in threads:
    jobs.put(None)
for t in threads:
    t.join()

collected = sorted(results.get_nowait() for _ in range(results.qsize()))
print("jobs done:", len(collected))
print("sum of squares:", sum(square for _, square in collected))
print("first five:", collected[:5])
print("threads alive:", sum(t.is_alive() for t in threads))
