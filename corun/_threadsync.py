"""The thread twins' waits, compiled with the core: condition waits and hand-overs, the deadlock check.

``patches/threading.py`` waits on a condition under a ``_thread`` lock of
ours (``threading.Condition``, ``Event``, ``queue.Queue``'s conditions)
and notifies its waiters through these steps, and every wait of the
twins' locks, conditions and queues asks ``other_threads_may_wake``.  They
live in the core so that the compiled build runs them natively, calling
the wait queue directly.  The steps that touch the stdlib's objects most
(``Queue.put``/``get``, ``Event.set``/``wait``) stay in ``patches/``:
there the interpreter's attribute caches serve them better than compiled
generic lookups do.
"""

from __future__ import annotations

import _thread
import sys
import threading
from types import FunctionType
from typing import TYPE_CHECKING, Any, Final

from . import _originals
from ._waiter import TIMED_OUT, state_of
from ._waitqueue import WaitQueue
from .hub import get_hub

if TYPE_CHECKING:
    from .hub import Hub

__all__ = [
    "NOTIFIED",
    "forked",
    "notify_and_release",
    "other_threads_may_wake",
    "real_thread_count",
    "try_lock",
    "wait_for_set",
    "wait_plain",
]

_get_ident: Final = _originals.get_ident
_os_thread_count: Final = _thread._count


class _State:
    """What the twins set and every wait reads: a native read when compiled, not a global's lookup."""

    __slots__ = ("main_thread_ident",)

    def __init__(self) -> None:
        # Compared with a hub's thread: waiting outside the main thread, the main thread may wake it.
        self.main_thread_ident: int = threading.main_thread().ident or _get_ident()


_state: Final = _State()


class TryLock:
    """The held state of a thread twin's lock, taken only without waiting: no C lock's arguments to parse.

    Compiled, each method is one native step that runs no Python code, so
    the GIL is not let go within it and it is atomic between OS threads,
    as the C lock's non-blocking acquire is.  Interpreted it would not be:
    ``try_lock`` then gives the C lock.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = False

    def acquire(self, blocking: bool = False) -> bool:
        """Take it if it is free; say whether it was taken."""
        if blocking:
            raise ValueError("a TryLock is only taken without waiting")
        if self._held:
            return False
        self._held = True
        return True

    def release(self) -> None:
        """Let it go.

        Raises:
            RuntimeError: it is not held (the C lock's error and text).
        """
        if not self._held:
            raise RuntimeError("release unlocked lock")
        self._held = False

    def locked(self) -> bool:
        """Whether it is held."""
        return self._held


def _atomic_steps() -> bool:
    # Compiled, and with a GIL: a free-threaded build runs native code in parallel.
    gil = getattr(sys, "_is_gil_enabled", None)
    return not isinstance(_atomic_steps, FunctionType) and (gil is None or bool(gil()))


_ATOMIC: Final = _atomic_steps()


def try_lock() -> Any:
    """The held state for a new thread twin's lock: a ``TryLock`` compiled, else a C lock.

    Both are taken with ``acquire(False)`` and let go with ``release()``.
    """
    if _ATOMIC:
        return TryLock()
    return _originals.allocate_lock()


class _Notified:
    """What a notified waiter is woken with when it must take the lock itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTIFIED"


NOTIFIED: Final = _Notified()


def forked() -> None:
    """In a forked child: the forking thread is the main thread now."""
    _state.main_thread_ident = _get_ident()


def real_thread_count() -> int:
    """OS threads besides the main one, leaving out corun's own thread-pool workers."""
    # A thread pool that was never imported has no workers; not importing it
    # here keeps it (and what it imports) out of patching.
    threadpool = sys.modules.get("corun.threadpool")
    workers: int = threadpool.worker_threads() if threadpool is not None else 0
    return max(0, _os_thread_count() - workers)


def other_threads_may_wake(hub: Hub) -> bool:
    """Whether a wait on ``hub`` could be ended by another OS thread (then it is no deadlock).

    The hub reports a deadlock when nothing it knows of can wake a task; a
    release from another OS thread is something it cannot know of.
    """
    # Outside the main thread, the main thread is one such waker (a pool
    # worker importing a module waits on an import lock a task holds).
    # This runs on every wait of a lock, condition or queue: with no other OS
    # thread at all, one C call answers.
    return state_of(hub).thread_ident != _state.main_thread_ident or (
        _os_thread_count() > 0 and real_thread_count() > 0
    )


def wait_plain(waiters: WaitQueue, lock: Any, what: object, timeout: float | None) -> bool:
    """``Condition.wait`` under a plain ``_thread`` lock of ours, whose release saves no state.

    The lock is held and the timeout positive or None.  Queues wait here too,
    on their ``not_empty`` and ``not_full`` conditions.
    """
    outcome: Any = TIMED_OUT
    try:
        # The lock is released only once in line: a notify before would be lost.
        outcome = waiters.park(get_hub(), what, timeout, once_in_line=lock.release)
    finally:
        # Restore the lock no matter what (a kill, KeyboardInterrupt), as the stdlib does,
        # unless notify moved the waiter into the lock's line and it was handed the lock.
        if outcome is not True:
            lock.acquire()
    return outcome is not TIMED_OUT


def wait_for_set(waiters: WaitQueue, lock: Any, what: object, timeout: float | None) -> bool:
    """``Event.wait``'s wait, with the event's lock held and its flag found clear; returns with the lock free.

    The stdlib's waiter, once woken, takes the lock back only to let go of
    it at once, which nothing can tell from not taking it: woken by a
    notify (what ``set`` does) it returns at once.  Handed the lock by a
    notify through the lock's line, it lets go of it; timed out or
    interrupted, it takes the lock and lets go, waiting for it as the
    stdlib's would.
    """
    outcome: Any = TIMED_OUT
    try:
        # The lock is released only once in line: a set before would be lost.
        outcome = waiters.park(get_hub(), what, timeout, once_in_line=lock.release)
    finally:
        if outcome is True:
            lock.release()
        elif outcome is TIMED_OUT:
            lock.acquire()
            lock.release()
    return outcome is not TIMED_OUT


def notify_and_release(cond: Any, lock: Any, n: int) -> None:
    """``cond.notify(n)`` then ``lock.release()``, for a plain lock of ours that the caller holds.

    When no task waits for the lock itself, the first waiter (on this OS
    thread) is handed the lock at once: what notify's move into the lock's
    line and the release's hand-over to the first in that line come to,
    without the lock being let go and taken back in between.
    """
    waiters: WaitQueue = cond._waiters
    line: WaitQueue = lock._waiters
    if waiters._waiters and not line._waiters:
        w = waiters.take()
        if w is not None:
            if w.state.thread_ident == _get_ident():
                if n > 1:
                    cond.notify(n - 1)  # the others line up for the lock behind it
                waiters.grant_moved(w, line, lock._give_back)
                return
            WaitQueue.wake(w, NOTIFIED)
            n -= 1
    if n > 0 and waiters._waiters:
        cond.notify(n)
    lock.release()
