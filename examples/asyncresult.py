"""``AsyncResult``: one task hands a value (or an error) to the tasks waiting for it.

An ``AsyncResult`` starts empty. ``get()`` blocks until another task calls
``set(value)`` and then returns that value, or until ``set_exception(exc)``
and then raises that exception in the waiter. Every waiter gets the same
outcome, and later ``get()`` calls return it at once.

Run it:  python examples/asyncresult.py
"""

import corun
from corun.event import AsyncResult


def compute(result: AsyncResult[int], a: int, b: int) -> None:
    """Work for a while, then publish the answer."""
    corun.sleep(0.1)
    print(f"producer: computed {a} * {b}, setting the result")
    result.set(a * b)


def validate(result: AsyncResult[int], text: str) -> None:
    """Work for a while, then report a failure to whoever waits."""
    corun.sleep(0.1)
    try:
        result.set(int(text))
    except ValueError as exc:
        print("producer: bad input, setting the exception")
        result.set_exception(exc)


def consumer(name: str, result: AsyncResult[int]) -> None:
    """Wait for the result and use it, or handle the error it carries."""
    print(f"{name}: waiting for the result")
    try:
        value = result.get()  # blocks this task until set() or set_exception()
    except ValueError as exc:
        print(f"{name}: the producer failed: {type(exc).__name__}: {exc}")
    else:
        print(f"{name}: got the value {value}")


def main() -> None:
    answer: AsyncResult[int] = AsyncResult()
    tasks = [
        corun.spawn(consumer, "consumer 1", answer),
        corun.spawn(consumer, "consumer 2", answer),
        corun.spawn(compute, answer, 6, 7),
    ]
    corun.joinall(tasks)
    # Once set, get() returns the stored value without blocking.
    print(f"main: the result is still there: {answer.get()}")

    broken: AsyncResult[int] = AsyncResult()
    tasks = [corun.spawn(consumer, "consumer 3", broken), corun.spawn(validate, broken, "forty-two")]
    corun.joinall(tasks)

    # get() with a timeout raises Timeout when nobody sets the result in time.
    never: AsyncResult[int] = AsyncResult()
    try:
        never.get(timeout=0.05)
    except corun.Timeout:
        print("main: get(timeout=0.05) on a result nobody sets raised Timeout")


if __name__ == "__main__":
    main()
