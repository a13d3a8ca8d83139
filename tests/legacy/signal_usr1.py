"""SIGUSR1 sent to self by a thread, handled in the main thread while it waits (pause and sleep)."""

import os
import signal
import threading
import time

received = []


def on_usr1(signum, frame):
    received.append(signal.Signals(signum).name)


signal.signal(signal.SIGUSR1, on_usr1)


def poke(delay):
    time.sleep(delay)
    os.kill(os.getpid(), signal.SIGUSR1)


# The main thread blocks in signal.pause() until the handler has run.
t = threading.Thread(target=poke, args=(0.3,))
t.start()
signal.pause()
t.join()
print("after pause:", received)

# A busy-looking legacy loop: sleep in small steps until a flag changes.
t = threading.Thread(target=poke, args=(0.3,))
t.start()
while len(received) < 2:
    time.sleep(0.05)
t.join()
print("after polling:", received)

# Sent straight from the main thread: the handler runs before kill returns control.
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.01)
print("direct:", received)
print("handler is ours:", signal.getsignal(signal.SIGUSR1) is on_usr1)
