"""A ``BoundedSemaphore`` lets at most two workers in at a time.

Six workers want the same scarce resource (think: a server that accepts
two connections per client). ``with limit:`` lets a worker in only while
fewer than two are inside; the others wait their turn, in order. The
program tracks how many workers are inside at once, to show the limit holds.

Run it:  python examples/bounded_workers.py
"""

import time

import corun
from corun.lock import BoundedSemaphore

LIMIT = 2
limit = BoundedSemaphore(LIMIT)

inside = 0  # workers currently holding the semaphore
most_inside = 0  # the largest number seen at any moment


def worker(number: int) -> None:
    """Use the scarce resource for 0.1 s, never with more than LIMIT others."""
    global inside, most_inside
    with limit:  # blocks here while LIMIT workers are already inside
        inside += 1
        most_inside = max(most_inside, inside)
        print(f"worker {number}: started ({inside} running)")
        corun.sleep(0.1)  # the work; other tasks run meanwhile
        inside -= 1
        print(f"worker {number}: finished")


def main() -> None:
    start = time.perf_counter()
    corun.joinall([corun.spawn(worker, number) for number in range(1, 7)])
    elapsed = time.perf_counter() - start
    print(f"max concurrency observed: {most_inside}")
    # Six workers of 0.1 s, two at a time: three rounds.
    print(f"6 workers, {LIMIT} at a time, took {elapsed:.2f} s")

    # "Bounded" means releasing more often than acquiring is an error, not a silent extra slot.
    try:
        limit.release()
    except ValueError:
        print("an extra release() raised ValueError")


if __name__ == "__main__":
    main()
