"""300 producers and 3 consumers over a bounded ``queue.Queue(50)``."""

import json
import queue
import threading
import time

PRODUCERS = 300
ITEMS = 10  # per producer
CONSUMERS = 3
MAXSIZE = 50


class Jobs(queue.Queue):
    """A bounded queue that remembers the most items it held when one was taken."""

    largest = 0

    def _get(self):
        # Called with the queue's lock held: no put can slip in between, as
        # one could between a get() and a qsize() made after it.
        self.largest = max(self.largest, len(self.queue))
        return super()._get()


jobs = Jobs(MAXSIZE)
consumed = [[] for _ in range(CONSUMERS)]


def produce(p):
    for i in range(ITEMS):
        jobs.put((p, i))


def consume(c):
    while True:
        item = jobs.get()
        if item is None:
            jobs.task_done()
            return
        consumed[c].append(item)
        time.sleep(0)  # "process" the item
        jobs.task_done()


consumers = [threading.Thread(target=consume, args=(c,)) for c in range(CONSUMERS)]
producers = [threading.Thread(target=produce, args=(p,)) for p in range(PRODUCERS)]
for thread in consumers + producers:
    thread.start()
for thread in producers:
    thread.join()
jobs.join()  # everything put has been processed
for _ in consumers:
    jobs.put(None)
for thread in consumers:
    thread.join()

everything = [tuple(item) for items in consumed for item in items]
print(
    json.dumps(
        {
            "consumed": len(everything),
            "distinct": len(set(everything)),
            "expected": sorted(everything) == [(p, i) for p in range(PRODUCERS) for i in range(ITEMS)],
            "per_consumer": [len(items) for items in consumed],
            "largest": jobs.largest,
            "left": jobs.qsize(),
        }
    )
)
