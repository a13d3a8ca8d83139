"""atexit handlers in reverse order; a daemon thread stuck in queue.get abandoned, a non-daemon one joined."""

import atexit
import queue
import threading
import time

atexit.register(print, "atexit: registered first, runs last")
atexit.register(lambda: print("atexit: registered second, runs first"))

never = queue.Queue()


def daemon_worker():
    never.get()  # nothing ever comes; the process must still exit
    print("daemon: never printed")


def slow_finisher():
    time.sleep(0.8)
    print("non-daemon: finished before the atexit handlers")


threading.Thread(target=daemon_worker, daemon=True).start()
threading.Thread(target=lambda: time.sleep(60), daemon=True).start()
threading.Thread(target=slow_finisher).start()
print("main: returning")
