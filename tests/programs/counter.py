"""A shared counter: read, pause, write back; with a ``Lock`` around it and without."""

import contextlib
import json
import threading
import time

THREADS = 20
ROUNDS = 10


def count(pause, guard):
    """THREADS threads each add 1 to a shared counter ROUNDS times; return the final count."""
    counter = 0

    def work():
        nonlocal counter
        for _ in range(ROUNDS):
            with guard:
                value = counter
                time.sleep(pause)  # another thread may run here
                counter = value + 1

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counter


print(
    json.dumps(
        {
            "locked_0": count(0, threading.Lock()),
            "locked_0.001": count(0.001, threading.Lock()),
            "unlocked_0": count(0, contextlib.nullcontext()),
            "unlocked_0.001": count(0.001, contextlib.nullcontext()),
        }
    )
)
