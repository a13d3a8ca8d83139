"""The thread twins' hot steps, compiled with the core: held state, waits, hand-overs, queue put/get.

``patches/threading.py`` waits on a condition under a ``_thread`` lock of
ours (``threading.Condition``, ``Event``, ``queue.Queue``'s conditions)
and notifies its waiters through these steps, and every wait of the
twins' locks, conditions and queues asks ``other_threads_may_wake``.  They
live in the core so that the compiled build runs them natively, calling
the wait queue and the locks' ``TryLock`` directly.  ``Queue.put``/``get``
are here too: compiled, their calls on the lock are native, which saves
more than their generic reads of the queue's attributes cost.
``Event.set``/``clear``/``wait`` stay in ``patches/``, where the
interpreter's attribute caches serve them better: they read more of the
stdlib's objects for fewer calls on the lock.
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
    "queue_get",
    "queue_put",
    "queues",
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


def _take(held: Any) -> bool:
    """``held.acquire(False)`` on a twin lock's ``_block``: a native call on a ``TryLock``."""
    if isinstance(held, TryLock):  # narrowed, the call below is a C call, not a method lookup
        return held.acquire(False)
    return bool(held.acquire(False))


def _let_go(lock: Any, held: Any) -> None:
    """``lock.release()`` for a held twin's lock whose ``_block`` is ``held``, written out natively."""
    if isinstance(held, TryLock):  # the same call, but narrowed it is a C call, not a method lookup
        held.release()
    else:
        held.release()
    line: WaitQueue = lock._waiters
    if line._waiters:
        lock._hand_over()


def _release(lock: Any) -> None:
    """``lock.release()`` for a held twin's lock."""
    _let_go(lock, lock._block)


class _Release:
    """Lets go of a thread twin's lock when called: once in line (no argument), or given back (the unit)."""

    __slots__ = ("lock",)

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def __call__(self, _unit: Any = None) -> None:
        _release(self.lock)


def wait_plain(waiters: WaitQueue, lock: Any, what: object, timeout: float | None) -> bool:
    """``Condition.wait`` under a plain ``_thread`` lock of ours, whose release saves no state.

    The lock is held and the timeout positive or None.  Queues wait here too,
    on their ``not_empty`` and ``not_full`` conditions.
    """
    outcome: Any = TIMED_OUT
    try:
        # The lock is released only once in line: a notify before would be lost.
        outcome = waiters.park(get_hub(), what, timeout, once_in_line=_Release(lock))
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
        outcome = waiters.park(get_hub(), what, timeout, once_in_line=_Release(lock))
    finally:
        if outcome is True:
            _release(lock)
        elif outcome is TIMED_OUT:
            lock.acquire()
            _release(lock)
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
                waiters.grant_moved(w, line, _Release(lock))
                return
            WaitQueue.wake(w, NOTIFIED)
            n -= 1
    if n > 0 and waiters._waiters:
        cond.notify(n)
    _release(lock)


class _Queues:
    """What the ``queue.Queue`` steps take from ``patches/queue.py``, which configures them on import."""

    __slots__ = ("empty", "full", "lock_type", "shutdown", "stdlib_get", "stdlib_put", "storage")

    def __init__(self) -> None:
        self.lock_type: object = None
        self.stdlib_put: Any = None
        self.stdlib_get: Any = None
        # The stdlib's hooks by their ``_get``: (_qsize, _put, storage type, add, take).
        self.storage: dict[Any, tuple[Any, Any, Any, Any, Any]] = {}
        self.shutdown: Any = None  # 3.13's ShutDown, else None
        self.empty: Any = None
        self.full: Any = None

    def configure(
        self,
        lock_type: object,
        stdlib_put: Any,
        stdlib_get: Any,
        storage: dict[Any, tuple[Any, Any, Any, Any, Any]],
        shutdown: Any,
        empty: Any,
        full: Any,
    ) -> None:
        """Take the twins' lock type, the stdlib's methods to fall back on, its hooks and its exceptions."""
        self.lock_type = lock_type
        self.stdlib_put = stdlib_put
        self.stdlib_get = stdlib_get
        self.storage = storage
        self.shutdown = shutdown
        self.empty = empty
        self.full = full


queues: Final = _Queues()


def queue_put(q: Any, item: Any, block: Any, timeout: Any) -> None:
    """``queue.Queue.put``: the stdlib's steps, with the twins' lock and conditions called directly.

    A queue whose mutex is not a lock of ours, a timed wait, or a mutex
    found held take the stdlib's code, which waits in line.
    """
    steps = queues
    mutex = q.mutex
    held: Any = None
    if (
        type(mutex) is not steps.lock_type
        or (block and timeout is not None)
        or not _take(held := mutex._block)
    ):
        steps.stdlib_put(q, item, block, timeout)
        return
    try:
        if steps.shutdown is not None and q.is_shutdown:
            raise steps.shutdown
        # How to size and add to the queue: C calls on ``q.queue`` where the class keeps the
        # stdlib's hooks and the storage they make, else the queue's own hooks.
        cls = type(q)
        known = steps.storage.get(cls._get)
        store: Any = q
        add: Any = None
        direct = False
        if known is not None and known[0] is cls._qsize and known[1] is cls._put:
            store = q.queue
            if type(store) is known[2]:
                direct = True
                add = known[3]
        if not direct:
            store = q
        maxsize = q.maxsize
        if maxsize > 0:
            if not block:
                if (len(store) if direct else q._qsize()) >= maxsize:
                    raise steps.full
            else:
                not_full = q.not_full
                while (len(store) if direct else q._qsize()) >= q.maxsize:
                    wait_plain(not_full._waiters, mutex, not_full, None)
                    if steps.shutdown is not None and q.is_shutdown:
                        raise steps.shutdown
                    if direct:
                        store = q.queue  # read afresh, as the stdlib's hooks would
        if direct:
            add(store, item)
        else:
            q._put(item)
        q.unfinished_tasks += 1
    except BaseException:
        mutex.release()
        raise
    not_empty = q.not_empty
    waiters: WaitQueue = not_empty._waiters
    if waiters._waiters:  # the deque itself: notify with nobody waiting is common
        notify_and_release(not_empty, mutex, 1)  # a getter waiting is handed the mutex too
    else:
        _let_go(mutex, held)


def queue_get(q: Any, block: Any, timeout: Any) -> Any:
    """``queue.Queue.get``: the stdlib's steps, with the twins' lock and conditions called directly."""
    steps = queues
    mutex = q.mutex
    held: Any = None
    if (
        type(mutex) is not steps.lock_type
        or (block and timeout is not None)
        or not _take(held := mutex._block)
    ):
        return steps.stdlib_get(q, block, timeout)
    try:
        cls = type(q)
        known = steps.storage.get(cls._get)
        store: Any = q
        take: Any = None
        direct = False
        if known is not None and known[0] is cls._qsize and known[1] is cls._put:
            store = q.queue
            if type(store) is known[2]:
                direct = True
                take = known[4]
        if not (len(store) if direct else q._qsize()):
            if steps.shutdown is not None and q.is_shutdown:
                raise steps.shutdown
            if not block:
                raise steps.empty
            not_empty = q.not_empty
            while True:
                wait_plain(not_empty._waiters, mutex, not_empty, None)
                if direct:
                    store = q.queue  # read afresh, as the stdlib's hooks would
                if len(store) if direct else q._qsize():
                    break
                if steps.shutdown is not None and q.is_shutdown:
                    raise steps.shutdown
        item = take(store) if direct else q._get()
    except BaseException:
        mutex.release()
        raise
    not_full = q.not_full
    waiters: WaitQueue = not_full._waiters
    if waiters._waiters:
        notify_and_release(not_full, mutex, 1)
    else:
        _let_go(mutex, held)
    return item
