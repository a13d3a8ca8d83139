"""The classic filter: input() and sys.stdin.readline() in the main thread, threads doing the work."""

import sys
import threading
import time

results = {}


def handle(n, text):
    time.sleep(0.05)
    results[n] = text[::-1]


header = input()
count = int(sys.stdin.readline())
threads = []
n = 0
while True:
    try:
        line = input()
    except EOFError:
        break
    t = threading.Thread(target=handle, args=(n, line))
    t.start()
    threads.append(t)
    n += 1
for t in threads:
    t.join()
print(header, "expected", count, "got", len(results))
for n in sorted(results)[:3]:
    print(n, results[n])
print("rest of stdin:", repr(sys.stdin.read()))
