"""A bounded queue.Queue(10) fed by 40 producer threads and drained by 3 consumers that each get a share."""

import collections
import queue
import threading
import time

items = queue.Queue(maxsize=10)
taken = collections.Counter()
seen = []


def produce(p):
    for i in range(25):
        items.put((p, i))


def consume(name):
    while True:
        item = items.get()
        if item is None:
            return
        seen.append(item)
        taken[name] += 1
        time.sleep(0.001)  # handling an item takes a moment


consumers = [threading.Thread(target=consume, args=(f"c{n}",)) for n in range(3)]
producers = [threading.Thread(target=produce, args=(p,)) for p in range(40)]
for t in consumers + producers:
    t.start()
for t in producers:
    t.join()
for _ in consumers:
    items.put(None)
for t in consumers:
    t.join()

print("items consumed:", len(seen), "distinct:", len(set(seen)))
print(
    "every producer's items in its order:",
    all([i for p2, i in seen if p2 == p] == list(range(25)) for p in range(40)),
)
# 1000 items at 1 ms each: a consumer left out would get none at all.
print("every consumer got at least 100:", all(taken[f"c{n}"] >= 100 for n in range(3)))
