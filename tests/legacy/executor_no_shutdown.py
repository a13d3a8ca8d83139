"""A ThreadPoolExecutor and a threading.Timer still busy when main returns: the exit waits for both."""

import concurrent.futures
import threading
import time

# One worker runs the jobs in order; the first job's line waits for the timer's.
executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
fired = threading.Event()


def late(n):
    time.sleep(0.3)
    if n == 0:
        fired.wait()
    print("late job", n, "done", flush=True)


def timer():
    print("timer fired", flush=True)
    fired.set()


for n in range(3):
    executor.submit(late, n)
threading.Timer(0.2, timer).start()
print("main returns without shutting the executor down", flush=True)
