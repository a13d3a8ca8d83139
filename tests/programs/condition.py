"""Ten threads wait on a ``Condition``; ``notify(n)`` wakes exactly n of them, oldest first."""

import json
import threading

WAITERS = 10

cond = threading.Condition()
waiting = []  # in the order the threads started waiting
woken = []
progress = threading.Semaphore(0)  # released once per woken thread


def waiter(n):
    with cond:
        waiting.append(n)
        cond.wait()
        woken.append(n)
    progress.release()


def collect(n):
    """Wait until n more threads have woken; return whether any further one woke soon after."""
    for _ in range(n):
        if not progress.acquire(timeout=5):
            raise RuntimeError(f"only {len(woken)} woke")
    return progress.acquire(timeout=0.2)


threads = [threading.Thread(target=waiter, args=(n,)) for n in range(WAITERS)]
for thread in threads:
    thread.start()
with cond:
    all_waiting = cond.wait_for(lambda: len(waiting) == WAITERS, timeout=5)

steps = []
for n in (3, 2):
    with cond:
        cond.notify(n)
    extra = collect(n)
    steps.append({"notified": n, "woken": sorted(woken), "extra": extra})
with cond:
    cond.notify_all()
extra = collect(WAITERS - len(woken))
steps.append({"notified": "all", "woken": sorted(woken), "extra": extra})
for thread in threads:
    thread.join()

print(json.dumps({"all_waiting": all_waiting, "waiting": waiting, "steps": steps}))
