"""A ThreadPoolExecutor and a threading.Timer still busy when main returns: the exit waits for both."""

import concurrent.futures
import threading
import time

executor = concurrent.futures.ThreadPoolExecutor(max_workers=2)


def late(n):
    time.sleep(0.4)
    print("late job", n, "done", flush=True)


for n in range(3):
    executor.submit(late, n)
threading.Timer(0.2, print, args=("timer fired",)).start()
print("main returns without shutting the executor down", flush=True)
