"""sys.exit(3) after a worker thread reports failure, a message on stderr; a thread's SystemExit is silent."""

import sys
import threading
import time

errors = []


def worker(n):
    time.sleep(0.05)
    if n == 4:
        errors.append(f"worker {n} failed")


def quits():
    sys.exit(9)  # in a thread: ends only that thread, silently


threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
threads.append(threading.Thread(target=quits))
for t in threads:
    t.start()
for t in threads:
    t.join()
print("workers done")
if errors:
    print("error:", *errors, file=sys.stderr)
    sys.exit(3)
