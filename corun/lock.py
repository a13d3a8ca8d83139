"""Semaphore, BoundedSemaphore, Lock and RLock for tasks.

All four count units on one fair ``WaitQueue``.  Nobody barges: while tasks
wait, a released unit is handed straight to the first of them (it never goes
back to the counter where a newcomer could take it), and a task cancelled
after being handed a unit, before it ran, passes the unit on to the next
waiter.  So there are never waiters while a unit is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from greenlet import getcurrent

from ._hubbound import HubBound
from ._mypyc import mypyc_attr
from ._waiter import TIMED_OUT
from ._waitqueue import WaitQueue

__all__ = [
    "BoundedSemaphore",
    "Lock",
    "LockStatistics",
    "RLock",
    "RLockStatistics",
    "Semaphore",
    "SemaphoreStatistics",
]


@dataclass(frozen=True)
class SemaphoreStatistics:
    """A snapshot of a Semaphore or BoundedSemaphore."""

    counter: int
    waiters: int


@dataclass(frozen=True)
class LockStatistics:
    """A snapshot of a Lock: held or not, by which task, how many wait."""

    locked: bool
    owner: Any
    waiters: int


@dataclass(frozen=True)
class RLockStatistics:
    """A snapshot of an RLock: its owner, how deep it holds it, how many wait."""

    locked: bool
    owner: Any
    count: int
    waiters: int


@mypyc_attr(allow_interpreted_subclasses=True)
class _Units(HubBound):
    """Free units and the tasks waiting for one: what every primitive here shares."""

    def __init__(self, value: int) -> None:
        self._counter = value
        self._waiters = WaitQueue()

    def _took(self, task: Any) -> None:
        """A unit went to ``task`` (None: back to the counter); Lock and RLock record owners."""

    def _take(self, blocking: bool, timeout: float | None) -> bool:
        """Take a unit, waiting up to ``timeout`` (None: forever, <= 0: not at all)."""
        if self._counter > 0:
            self._counter -= 1
            self._took(getcurrent())
            return True
        if not blocking or (timeout is not None and timeout <= 0):
            return False
        hub = self._own_hub()
        return self._waiters.park(hub, self, timeout, self._give_back) is not TIMED_OUT

    def _give(self) -> None:
        """Release one unit: to the first waiter if there is one, else to the counter."""
        if self._waiters:
            self._own_hub()
            w = self._waiters.grant(True)
            if w is not None:
                self._took(w.greenlet)
                return
        self._counter += 1
        self._took(None)

    def _give_back(self, _granted: Any) -> None:
        # Called in a task cancelled after it was handed a unit.
        self._give()

    def _reset(self, value: int) -> None:
        # After fork only the forking task survives; whoever held or waited is gone.
        self._counter = value
        self._waiters = WaitQueue()
        self._took(None)


def _check_timeout(blocking: bool, timeout: float | None) -> float | None:
    """Validate a ``threading.Lock``-style timeout; return it as None (forever) or seconds."""
    if timeout is None or timeout == -1:
        return None
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    return timeout


@mypyc_attr(allow_interpreted_subclasses=True)
class Semaphore(_Units):
    """A counter of free units; ``acquire`` waits while it is zero, in FIFO order."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError(f"semaphore initial value must be >= 0, not {value}")
        super().__init__(value)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"<{name} counter={self._counter} waiters={len(self._waiters)} at {id(self):#x}>"

    @property
    def counter(self) -> int:
        """How many units are free now."""
        return self._counter

    def locked(self) -> bool:
        """True if ``acquire`` would block (no unit is free)."""
        return self._counter <= 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a unit; return False if none was free (``blocking=False``) or within ``timeout``.

        Raises:
            ValueError: a timeout was given with ``blocking=False``.
        """
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        return self._take(blocking, timeout)

    def release(self, n: int = 1) -> None:
        """Give back ``n`` units, waking up to ``n`` waiters in arrival order."""
        if n < 1:
            raise ValueError("n must be one or more")
        for _ in range(n):
            self._give()

    def wait(self, timeout: float | None = None) -> int:
        """Wait until a unit could be taken, without taking it; return the counter.

        The counter can be 0 again by then if other tasks waited to acquire.
        """
        if self._counter > 0 or (timeout is not None and timeout <= 0):
            return self._counter
        hub = self._own_hub()
        if self._waiters.park(hub, self, timeout, self._give_back) is not TIMED_OUT:
            # Our turn came with a unit we do not want: pass it on in order.
            self._give()
        return self._counter

    def statistics(self) -> SemaphoreStatistics:
        """The free units and how many tasks wait."""
        return SemaphoreStatistics(self._counter, len(self._waiters))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@mypyc_attr(allow_interpreted_subclasses=True)
class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses to be released more often than it was acquired."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial_value = value

    def release(self, n: int = 1) -> None:
        """Give back ``n`` units.

        Raises:
            ValueError: that would make more units free than the semaphore started with.
        """
        if self._counter + n > self._initial_value:
            raise ValueError("Semaphore released too many times")
        super().release(n)


@mypyc_attr(allow_interpreted_subclasses=True)
class Lock(_Units):
    """A mutual-exclusion lock with ``threading.Lock`` semantics, fair to waiting tasks.

    Any task may release it, not only the one that acquired it.
    """

    def __init__(self) -> None:
        super().__init__(1)
        self._owner: Any = None

    def __repr__(self) -> str:
        state = "locked" if self._counter == 0 else "unlocked"
        return f"<{type(self).__name__} {state} waiters={len(self._waiters)} at {id(self):#x}>"

    def _took(self, task: Any) -> None:
        self._owner = task

    def locked(self) -> bool:
        """True while some task holds the lock."""
        return self._counter == 0

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock; return False if it was held (``blocking=False``) or not freed in time.

        ``timeout`` -1 or None waits forever.

        Raises:
            ValueError: a timeout with ``blocking=False``, or a negative timeout.
        """
        return self._take(blocking, _check_timeout(blocking, timeout))

    def release(self) -> None:
        """Free the lock, handing it to the first waiting task if any.

        Raises:
            RuntimeError: the lock is not held.
        """
        if self._counter:
            raise RuntimeError("release unlocked lock")
        self._give()

    def statistics(self) -> LockStatistics:
        """Held or not, by which task, and how many tasks wait."""
        return LockStatistics(self._counter == 0, self._owner, len(self._waiters))

    def _at_fork_reinit(self) -> None:
        self._reset(1)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@mypyc_attr(allow_interpreted_subclasses=True)
class RLock(_Units):
    """A reentrant lock: its owner may acquire it again; only the owner may release it."""

    def __init__(self) -> None:
        super().__init__(1)
        self._owner: Any = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._counter == 0 else "unlocked"
        return (
            f"<{type(self).__name__} {state} owner={self._owner!r} count={self._count} "
            f"waiters={len(self._waiters)} at {id(self):#x}>"
        )

    def _took(self, task: Any) -> None:
        # Also on hand-off, before the new owner runs: no third task can slip in.
        self._owner = task
        self._count = 0 if task is None else 1

    def locked(self) -> bool:
        """True while some task holds the lock."""
        return self._counter == 0

    def _is_owned(self) -> bool:
        """True if the current task holds the lock (``threading.Condition`` asks this)."""
        return self._owner is getcurrent()

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock, or take it once more if the current task holds it already.

        Returns False if another task held it (``blocking=False``) or did not free it in time.

        Raises:
            ValueError: a timeout with ``blocking=False``, or a negative timeout.
        """
        seconds = _check_timeout(blocking, timeout)
        if self._owner is getcurrent():
            self._count += 1
            return True
        return self._take(blocking, seconds)

    def release(self) -> None:
        """Undo one ``acquire``; the last one frees the lock for the next waiter.

        Raises:
            RuntimeError: the current task does not hold the lock.
        """
        if self._owner is not getcurrent() or self._count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._give()

    def statistics(self) -> RLockStatistics:
        """The owner, its recursion depth, and how many tasks wait."""
        return RLockStatistics(self._counter == 0, self._owner, self._count, len(self._waiters))

    # What threading.Condition uses to wait on a lock held several levels deep.

    def _release_save(self) -> tuple[int, Any]:
        if self._owner is not getcurrent() or self._count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._give()
        return state

    def _acquire_restore(self, state: tuple[int, Any]) -> None:
        self._take(True, None)
        self._count, self._owner = state

    def _recursion_count(self) -> int:
        return self._count if self._owner is getcurrent() else 0

    def _at_fork_reinit(self) -> None:
        self._reset(1)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
