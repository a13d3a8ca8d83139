"""A SIGTERM handler calling sys.exit(5) while main joins busy daemon threads: finally, atexit, status 5."""

import atexit
import os
import signal
import subprocess
import sys
import threading
import time


def on_term(signum, frame):
    print("SIGTERM: exiting with status 5", flush=True)
    sys.exit(5)


signal.signal(signal.SIGTERM, on_term)
atexit.register(print, "atexit handler ran")


def work():
    while True:
        time.sleep(0.05)


workers = [threading.Thread(target=work, daemon=True) for _ in range(3)]
for t in workers:
    t.start()
# A supervisor process stops this one a moment later.
subprocess.Popen(["sh", "-c", f"sleep 0.8; kill -TERM {os.getpid()}"])
try:
    for t in workers:
        t.join()
finally:
    print("finally in main", flush=True)
