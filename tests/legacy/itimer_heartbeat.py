"""A periodic SIGALRM heartbeat (setitimer with an interval) counting ticks while worker threads sleep."""

import signal
import threading
import time

ticks = []


def on_tick(signum, frame):
    ticks.append(len(ticks))
    if len(ticks) == 8:
        signal.setitimer(signal.ITIMER_REAL, 0)  # enough


signal.signal(signal.SIGALRM, on_tick)
signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)

done = []


def work(n):
    time.sleep(0.3)
    done.append(n)


threads = [threading.Thread(target=work, args=(n,)) for n in range(5)]
for t in threads:
    t.start()
for t in threads:
    t.join()
while len(ticks) < 8:
    time.sleep(0.05)
time.sleep(0.3)  # no tick after the timer is off
print("workers done:", sorted(done))
print("ticks:", ticks)
