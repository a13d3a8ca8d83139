"""Deadlines with ``corun.Timeout``: the ways to put a time limit on a wait.

A ``Timeout`` raises in the task that started it once its seconds have passed,
interrupting whatever that task is blocked on. It derives from
``BaseException``, not ``Exception``, so a broad ``except Exception`` in the
code it interrupts does not swallow it by accident.

Run it:  python examples/timeouts.py
"""

import time

import corun
from corun import Timeout


class TooSlow(Exception):
    """Our own error, raised instead of Timeout when the deadline passes."""


def slow_lookup(key: str) -> str:
    """Pretend to ask a server that takes a whole second to answer."""
    corun.sleep(1)
    return f"value of {key}"


def quick_lookup(key: str) -> str:
    """Pretend to ask a server that answers almost at once."""
    corun.sleep(0.01)
    return f"value of {key}"


def with_block() -> None:
    """1. The usual style: a ``with`` block that must finish in time."""
    timeout = Timeout(0.1)
    try:
        with timeout:
            slow_lookup("a")
        print("1. with Timeout(...): finished in time (unexpected)")
    except Timeout as exc:
        # Check it is *our* timeout, not one started further up the call stack.
        if exc is not timeout:
            raise
        print(f"1. with Timeout(...): timed out after {exc}")


def start_new_and_cancel() -> None:
    """2. Start a countdown, and always cancel it in ``finally``."""
    timeout = Timeout.start_new(0.1)
    try:
        slow_lookup("b")
        print("2. Timeout.start_new(...): finished in time (unexpected)")
    except Timeout as exc:
        if exc is not timeout:
            raise
        print(f"2. Timeout.start_new(...): timed out after {exc}")
    finally:
        # Without cancel(), a countdown left running would fire later, somewhere else.
        timeout.cancel()


def silent() -> None:
    """3. ``Timeout(seconds, False)``: leave the block quietly, no exception."""
    result = None
    with Timeout(0.1, False):
        result = slow_lookup("c")
    # Nothing was raised: the only sign of the timeout is that result was never set.
    print(f"3. with Timeout(..., False): left the block silently, result={result!r}")


def helper() -> None:
    """4. ``with_timeout``: call one function with a deadline."""
    value = corun.with_timeout(0.1, slow_lookup, "d", timeout_value="(default)")
    print(f"4. with_timeout(..., timeout_value=...): too slow, got {value!r}")
    value = corun.with_timeout(0.5, quick_lookup, "e", timeout_value="(default)")
    print(f"4. with_timeout(..., timeout_value=...): in time, got {value!r}")


def custom_exception() -> None:
    """5. Raise an exception of our own instead of Timeout."""
    try:
        with Timeout(0.1, TooSlow):
            slow_lookup("f")
    except TooSlow as exc:
        print(f"5. with Timeout(..., TooSlow): caught {type(exc).__name__}")
    try:
        with Timeout(0.1, TooSlow("the lookup of 'g' took too long")):
            slow_lookup("g")
    except TooSlow as exc:
        print(f"5. with Timeout(..., TooSlow('...')): caught {type(exc).__name__}: {exc}")


def in_time() -> None:
    """6. A deadline that is met changes nothing."""
    with Timeout(0.5):
        value = quick_lookup("h")
    print(f"6. with Timeout(...): finished in time, got {value!r}")


def main() -> None:
    start = time.perf_counter()
    with_block()
    start_new_and_cancel()
    silent()
    helper()
    custom_exception()
    in_time()
    # Every slow lookup was cut short: far less than the 6 s they would have taken.
    print(f"total time: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
