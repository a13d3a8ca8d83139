"""A service's 'while True: time.sleep(1)' loop stopped by SIGINT (KeyboardInterrupt), then shutdown."""

import os
import signal
import threading
import time

stop = threading.Event()
served = []


def service(n):
    while not stop.is_set():
        served.append(n)
        stop.wait(0.1)


def ctrl_c_later():
    time.sleep(0.8)
    os.kill(os.getpid(), signal.SIGINT)


workers = [threading.Thread(target=service, args=(n,)) for n in range(3)]
for t in workers:
    t.start()
threading.Thread(target=ctrl_c_later, daemon=True).start()
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    print("KeyboardInterrupt in the main loop")
stop.set()
for t in workers:
    t.join()
print("each worker served:", sorted(set(served)))
print("workers alive:", sum(t.is_alive() for t in workers))
