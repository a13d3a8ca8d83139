"""threading.Timer: timers fire in order of their delays, cancelled ones never fire."""

import threading

fired = []
lock = threading.Lock()


def fire(name):
    with lock:
        fired.append(name)


timers = [threading.Timer(0.1 + 0.08 * n, fire, args=(f"timer-{n}",)) for n in range(9)]
for t in timers:
    t.start()
for t in timers[1::3]:
    t.cancel()
for t in timers:
    t.join()

print("fired:", fired)
print("cancelled:", [f"timer-{n}" for n in range(1, 9, 3)])
print("finished flags:", all(t.finished.is_set() for t in timers))
