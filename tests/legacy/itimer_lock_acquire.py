"""signal.setitimer guarding lock.acquire() on a lock a stuck thread holds; the handler raises."""

import signal
import threading
import time


class Stuck(Exception):
    pass


def on_alarm(signum, frame):
    raise Stuck("lock not acquired within 0.5 s")


signal.signal(signal.SIGALRM, on_alarm)
lock = threading.Lock()
release = threading.Event()


def holder():
    with lock:
        release.wait()


t = threading.Thread(target=holder, daemon=True)
t.start()
time.sleep(0.1)
signal.setitimer(signal.ITIMER_REAL, 0.5)
try:
    lock.acquire()
    print("acquired")
except Stuck as exc:
    print("gave up:", exc)
finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
release.set()
t.join()
print("acquired once free:", lock.acquire(timeout=5))
