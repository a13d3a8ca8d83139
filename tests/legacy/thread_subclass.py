"""A threading.Thread subclass: run(), join(timeout), is_alive(), names, daemon flags, enumerate()."""

import threading
import time


class Downloader(threading.Thread):
    def __init__(self, n, delay):
        super().__init__(name=f"downloader-{n}")
        self.n = n
        self.delay = delay
        self.result = None

    def run(self):
        time.sleep(self.delay)
        self.result = f"file-{self.n}.bin"


fast = [Downloader(n, 0.2) for n in range(4)]
slow = Downloader(99, 0.8)
for t in [*fast, slow]:
    t.start()
print("running:", sorted(t.name for t in threading.enumerate()))
print("active count:", threading.active_count())
for t in fast:
    t.join()
slow.join(timeout=0.2)
print("slow still alive after join(0.2):", slow.is_alive(), slow.result)
slow.join()
print("slow alive after join():", slow.is_alive(), slow.result)
print("results:", [t.result for t in fast])
print(
    "daemon flags:",
    [t.daemon for t in fast],
    "main is main:",
    threading.current_thread() is threading.main_thread(),
)
print("left:", [t.name for t in threading.enumerate()])
try:
    slow.start()
except RuntimeError as exc:
    print("start twice:", exc)
