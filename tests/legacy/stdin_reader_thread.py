"""Piped stdin read line by line in a thread into a queue.Queue; the main thread takes the lines."""

import queue
import sys
import threading
import time

lines = queue.Queue()


def read_stdin():
    for line in sys.stdin:
        lines.put(line.rstrip("\n"))
    lines.put(None)


ticks = [0]
stop = threading.Event()


def ticker():
    while not stop.wait(0.05):
        ticks[0] += 1


threading.Thread(target=read_stdin, daemon=True).start()
tick_thread = threading.Thread(target=ticker)
tick_thread.start()
words = 0
numbers = []
while True:
    line = lines.get(timeout=30)
    if line is None:
        break
    words += len(line.split())
    numbers.extend(int(w) for w in line.split() if w.isdigit())
    time.sleep(0.008)
stop.set()
tick_thread.join()
print("words:", words)
print("sum of numbers:", sum(numbers))
print("the ticker ran meanwhile:", ticks[0] > 0)
