"""Structured concurrency: ``corun.TaskGroup`` keeps child tasks inside a block.

Leaving ``with corun.TaskGroup() as tg:`` waits for every task spawned with
``tg.spawn``, so no task outlives the block. When one child fails, the group
kills the others and raises the failures together as an ``ExceptionGroup``.
A ``Timeout`` around the block cancels the whole group.

Run it:  python examples/taskgroup.py
"""

import sys
import time

import corun

if sys.version_info < (3, 11):
    # ExceptionGroup became a builtin in Python 3.11; older versions use the backport.
    from exceptiongroup import ExceptionGroup


def fetch(name: str, seconds: float) -> str:
    """Wait, then return a result; report it if the group kills us first."""
    try:
        corun.sleep(seconds)
    except corun.GreenletExit:
        # The group kills a task by raising GreenletExit in it: clean up, then let it end the task.
        print(f"  {name}: cancelled")
        raise
    print(f"  {name}: done")
    return f"{name} result"


def broken(name: str, seconds: float) -> str:
    """Wait, then fail."""
    corun.sleep(seconds)
    print(f"  {name}: failing")
    raise ValueError(f"{name} could not connect")


def all_succeed() -> None:
    """Every child finishes; the block ends when the last one does."""
    print("1. all children succeed:")
    with corun.TaskGroup() as tg:
        tasks = [tg.spawn(fetch, f"job-{n}", 0.05 * n) for n in (3, 1, 2)]
    # Past the block, every child has finished: their results are ready.
    print(f"  results: {[task.get() for task in tasks]}")


def one_fails() -> None:
    """One child fails: the others are cancelled and the failure reaches us."""
    print("2. one child fails:")
    start = time.perf_counter()
    try:
        with corun.TaskGroup() as tg:
            tg.spawn(fetch, "slow-1", 5)
            tg.spawn(fetch, "slow-2", 5)
            tg.spawn(broken, "flaky", 0.1)
    # On Python 3.11+ one could write `except* ValueError as eg:`; that syntax
    # does not parse on 3.10, so catch the group and check its type instead.
    except BaseException as eg:
        if not isinstance(eg, ExceptionGroup):
            raise
        for exc in eg.exceptions:
            print(f"  caught in the group: {type(exc).__name__}: {exc}")
    # The slow children were cancelled, not waited for: far less than 5 s.
    print(f"  the group ended after {time.perf_counter() - start:.2f} s")


def deadline() -> None:
    """A Timeout around the group cancels every child in it."""
    print("3. a deadline around the group:")
    with corun.Timeout(0.1, False):  # False: leave the block silently when time is up
        with corun.TaskGroup() as tg:
            tg.spawn(fetch, "slow-3", 5)
            tg.spawn(fetch, "slow-4", 5)
    print(f"  children still running: {len(tg.children)}")


def main() -> None:
    all_succeed()
    one_fails()
    deadline()


if __name__ == "__main__":
    main()
