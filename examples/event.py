"""One ``Event`` waking several waiting tasks at once.

An ``Event`` is a flag: ``wait()`` blocks until some task calls ``set()``,
and ``set()`` wakes every task waiting for it, in the order they started
waiting. Once set, the event stays set and ``wait()`` returns at once, until
``clear()`` resets it.

Run it:  python examples/event.py
"""

import corun
from corun.event import Event

ready = Event()


def waiter(number: int) -> int:
    """Block until the event is set, then get to work."""
    print(f"waiter {number}: waiting for the event")
    ready.wait()
    print(f"waiter {number}: woke up, event is set={ready.is_set()}")
    return number


def main() -> None:
    waiters = [corun.spawn(waiter, number) for number in range(1, 4)]

    # Let the waiters run until each one blocks in wait().
    corun.sleep(0)
    print(f"main: {ready.statistics().waiters} tasks are waiting; setting the event")
    ready.set()  # one call wakes all of them
    corun.joinall(waiters)
    print(f"main: all {len(waiters)} waiters woke up")

    # A set event does not block; a cleared one blocks until set again or a timeout.
    print(f"main: wait() on the set event returns {ready.wait()}")
    ready.clear()
    print(f"main: wait(timeout=0.05) on the cleared event returns {ready.wait(timeout=0.05)}")


if __name__ == "__main__":
    main()
