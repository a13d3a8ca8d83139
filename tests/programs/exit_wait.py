"""The main script returns while threads still run: a non-daemon one is waited for, a daemon one is not."""

import threading
import time


def late():
    time.sleep(0.5)
    print("non-daemon thread done", flush=True)


def forever():
    time.sleep(30)
    print("daemon thread done", flush=True)


threading.Thread(target=forever, daemon=True).start()
threading.Thread(target=late).start()
print("main done", flush=True)
