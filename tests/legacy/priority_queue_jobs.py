"""queue.PriorityQueue jobs with task_done/join; a LifoQueue; Empty and Full after timeouts."""

import queue
import threading
import time

jobs = queue.PriorityQueue()
order = []
order_lock = threading.Lock()
gate = threading.Event()


def worker():
    gate.wait()
    while True:
        priority, name = jobs.get()
        if name is None:
            jobs.task_done()
            return
        time.sleep(0.02)
        with order_lock:
            order.append((priority, name))
        jobs.task_done()


for n in range(30):
    jobs.put(((n * 7) % 10, f"job{n:02d}"))
worker_thread = threading.Thread(target=worker)
worker_thread.start()
gate.set()
jobs.join()
jobs.put((99, None))
worker_thread.join()
print("priorities in order:", [p for p, _ in order] == sorted(p for p, _ in order))
print("first three:", order[:3])

stack = queue.LifoQueue()
for n in range(5):
    stack.put(n)
print("lifo:", [stack.get() for _ in range(5)])

try:
    stack.get(timeout=0.2)
except queue.Empty:
    print("Empty after a 0.2 s timeout")
small = queue.Queue(maxsize=1)
small.put("x")
try:
    small.put("y", timeout=0.2)
except queue.Full:
    print("Full after a 0.2 s timeout")
