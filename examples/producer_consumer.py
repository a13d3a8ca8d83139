"""A producer and three consumers sharing a bounded ``Queue``.

The queue holds at most three items: when it is full, ``put`` blocks the
producer until a consumer has taken something, so a fast producer cannot run
ahead of slow consumers. The program ends cleanly in two steps:

1. ``queue.join()`` waits until every item put has been marked done with
   ``task_done()``;
2. one sentinel (``None``) per consumer tells each consumer to stop.

Run it:  python examples/producer_consumer.py
"""

import corun
from corun.queue import Queue

ITEMS = 10
CONSUMERS = 3
STOP = None  # the sentinel: "no more work, stop"

queue: Queue = Queue(maxsize=3)
largest_size = 0  # the most items ever waiting in the queue


def producer() -> None:
    """Put ITEMS items, blocking whenever the queue is full."""
    global largest_size
    for item in range(ITEMS):
        # Blocks while the queue holds maxsize items. An item put while a consumer
        # is waiting in get() goes straight to that consumer, not into the queue.
        queue.put(item)
        largest_size = max(largest_size, queue.qsize())
        print(f"producer: put item {item} ({queue.qsize()} waiting in the queue)")
    print("producer: done")


def consumer(name: str, done: list[int]) -> None:
    """Take items until the sentinel arrives."""
    while True:
        item = queue.get()  # blocks while the queue is empty
        try:
            if item is STOP:
                print(f"{name}: stopping")
                return
            corun.sleep(0.05)  # process the item; slower than the producer
            done.append(item)
            print(f"{name}: processed item {item}")
        finally:
            queue.task_done()  # lets queue.join() know this item is finished


def main() -> None:
    done: list[int] = []
    consumers = [corun.spawn(consumer, f"consumer {n}", done) for n in range(1, CONSUMERS + 1)]
    corun.spawn(producer).join()

    queue.join()  # every item has been processed
    print(f"main: all {ITEMS} items processed; stopping the consumers")
    for _ in consumers:
        queue.put(STOP)
    corun.joinall(consumers)

    print(f"processed: {sorted(done)}")
    print(f"largest queue size seen: {largest_size} (maxsize {queue.maxsize})")


if __name__ == "__main__":
    main()
