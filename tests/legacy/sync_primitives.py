"""Condition (a bounded buffer), Event, Semaphore and Barrier between threads."""

import collections
import threading
import time

# A bounded buffer built on a Condition, the textbook way.
buffer = collections.deque()
cond = threading.Condition()
CAPACITY = 3
produced_done = []


def producer(base):
    for i in range(10):
        with cond:
            while len(buffer) >= CAPACITY:
                cond.wait()
            buffer.append(base + i)
            cond.notify_all()
        time.sleep(0.01)


consumed = []


def consumer():
    while True:
        with cond:
            while not buffer:
                if produced_done:
                    return
                cond.wait(timeout=0.5)
            consumed.append(buffer.popleft())
            cond.notify_all()


producers = [threading.Thread(target=producer, args=(100 * p,)) for p in range(4)]
consumers = [threading.Thread(target=consumer) for _ in range(2)]
for t in producers + consumers:
    t.start()
for t in producers:
    t.join()
with cond:
    produced_done.append(True)
    cond.notify_all()
for t in consumers:
    t.join()
print("condition: consumed", len(consumed), "items, sum", sum(consumed))

# An Event releasing every waiter at once.
go = threading.Event()
woke = []


def waiter(n):
    if go.wait(timeout=10):
        woke.append(n)


waiters = [threading.Thread(target=waiter, args=(n,)) for n in range(6)]
for t in waiters:
    t.start()
time.sleep(0.2)
print("event: woken before set:", len(woke))
go.set()
for t in waiters:
    t.join()
print("event: woken after set:", sorted(woke))

# A Semaphore letting three in at a time.
gate = threading.Semaphore(3)
inside = [0]
peak = [0]
count_lock = threading.Lock()


def guarded():
    with gate:
        with count_lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.1)
        with count_lock:
            inside[0] -= 1


guarded_threads = [threading.Thread(target=guarded) for _ in range(9)]
for t in guarded_threads:
    t.start()
for t in guarded_threads:
    t.join()
print("semaphore: peak inside", peak[0])

# A Barrier: three phases, nobody starts a phase before all finished the last.
barrier = threading.Barrier(4)
log = []


def phased(n):
    for phase in range(3):
        time.sleep(0.02 * n)
        log.append(phase)
        barrier.wait(timeout=10)


phased_threads = [threading.Thread(target=phased, args=(n,)) for n in range(4)]
for t in phased_threads:
    t.start()
for t in phased_threads:
    t.join()
print("barrier: phases in order:", log == sorted(log), "entries", len(log))

try:
    threading.Barrier(2).wait(timeout=0.1)
except threading.BrokenBarrierError:
    print("barrier: a lone waiter times out with BrokenBarrierError")
