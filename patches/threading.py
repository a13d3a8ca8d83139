"""Cooperative twin of ``threading``: its captured ``_thread`` names point at the task versions.

``threading`` copies ``_thread``'s functions into its own namespace at import
(``_start_new_thread``, ``_allocate_lock``, ``_CRLock``, ``get_ident``...),
and it is always imported before patching, so replacing ``_thread``'s
attributes alone would change nothing.  Everything else in ``threading``
(``Thread``, ``Event``, ``Semaphore``, ``Barrier``, ``Timer``,
``_shutdown``) is Python built on those names and becomes cooperative with
them.

``Condition`` is replaced, for fairness: the stdlib's wait parks on a lock
of its own and, once notified, takes the condition's lock like any
newcomer.  A task that never waited (a consumer looping on a queue that is
never empty when it looks) then takes the lock, and the item, first every
time, and the notified task finds nothing; OS threads escape this because
the kernel runs the woken one meanwhile.  Here a waiter parks on one
``WaitQueue``, and ``notify`` moves a waiter of its own OS thread, still
parked, into the line of the condition's lock when that is a ``_thread``
lock of ours: the notifier's release hands the lock straight to it, ahead
of anyone who asks later.  A waiter on another OS thread, or under another
kind of lock, is woken and takes the lock as the stdlib's would.
"""

from __future__ import annotations

import threading as _threading
import weakref
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent

from corun import _originals, _threadsync
from corun._waiter import TIMED_OUT
from corun._waitqueue import WaitQueue
from corun.greenlet import Greenlet
from corun.hub import get_hub

from . import thread as _thread_twin

__all__ = ["Condition", "Lock", "RLock", "get_ident", "local"]

__target__ = "threading"
__implements__ = [
    "Condition",
    "Lock",
    "_CRLock",
    "_DummyThread",
    "_LockType",
    "_ThreadHandle",
    "_allocate_lock",
    "_make_thread_handle",
    "_set_sentinel",
    "_start_joinable_thread",
    "_start_new_thread",
    "_thread_shutdown",
    "get_ident",
    "local",
]

Lock = _LockType = _allocate_lock = _thread_twin.LockType
_CRLock = RLock = _thread_twin.RLock
get_ident = _thread_twin.get_ident
local = _thread_twin._local
_set_sentinel = _thread_twin._set_sentinel
_start_new_thread = _thread_twin.start_new_thread
_start_joinable_thread = _thread_twin.start_joinable_thread
_ThreadHandle = _thread_twin._ThreadHandle
_make_thread_handle = _thread_twin._make_thread_handle
_thread_shutdown = _thread_twin._shutdown


_NOTIFIED = _threadsync.NOTIFIED


class Condition(_threading.Condition):
    """``threading.Condition`` on one ``WaitQueue``; a notified task gets the lock in its turn."""

    # Set by the stdlib's __init__ (typeshed leaves them out).
    _lock: Any
    _release_save: Callable[[], Any]
    _acquire_restore: Callable[[Any], None]
    _is_owned: Callable[[], bool]

    def __init__(self, lock: Any = None) -> None:
        super().__init__(lock)
        self._waiters: Any = WaitQueue(_thread_twin._other_threads_may_wake)
        if type(self._lock) is _thread_twin.LockType:
            # What the stdlib's check (try the lock, release it) finds, in one call.
            self._is_owned = self._lock.locked

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._waiters = WaitQueue(_thread_twin._other_threads_may_wake)

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait until notified or ``timeout``, take the lock back; False on timeout.

        Raises:
            RuntimeError: the lock is not held.
        """
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        if timeout is not None and timeout <= 0:
            # As the stdlib's: let go of the lock and take it back, without waiting.
            self._acquire_restore(self._release_save())
            return False
        lock = self._lock
        if type(lock) is _thread_twin.LockType:
            return _wait_plain(self._waiters, lock, self, timeout)
        saved: list[Any] = []

        def release_once_in_line() -> None:
            # Only now: a notify between the release and getting in line would be lost.
            saved.append(self._release_save())

        outcome: Any = TIMED_OUT
        try:
            outcome = self._waiters.park(get_hub(), self, timeout, once_in_line=release_once_in_line)
        finally:
            # Restore the lock no matter what (a kill, KeyboardInterrupt), as the stdlib does.
            if saved:
                if outcome is True:
                    self._lock._adopt(saved[0])  # moved into the lock's line and handed the lock
                else:
                    self._acquire_restore(saved[0])
        return outcome is not TIMED_OUT

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, first come first served.

        Raises:
            RuntimeError: the lock is not held.
        """
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiters = self._waiters
        if not waiters._waiters:  # the deque itself: notify with nobody waiting is common
            return
        lock = self._lock
        line = lock._waiters if isinstance(lock, _thread_twin._Parking) else None
        me = _originals.get_ident()
        while n > 0:
            w = waiters.take()
            if w is None:
                return
            n -= 1
            if line is not None and w.state.thread_ident == me:
                waiters.move_to(w, line, lock._give_back)
            else:
                waiters.wake(w, _NOTIFIED)


# Condition and Event waits under a lock of ours, and their notify: compiled with the core.
_wait_plain = _threadsync.wait_plain
_notify_and_release = _threadsync.notify_and_release
_wait_for_set = _threadsync.wait_for_set


# The stdlib's Event methods, which the replacements below fall back on.
_stdlib_event_set = _threading.Event.set
_stdlib_event_clear = _threading.Event.clear
_stdlib_event_wait = _threading.Event.wait


def _event_set(self: Any) -> None:
    """``threading.Event.set``: the stdlib's steps, with the lock and condition of ours called directly."""
    cond = self._cond
    lock = cond._lock
    if type(lock) is not _thread_twin.LockType or not lock._block.acquire(False):
        # An event made before patching, or its lock held: the stdlib's code, which waits in line.
        _stdlib_event_set(self)
        return
    self._flag = True
    waiters = cond._waiters
    if waiters._waiters:  # the deque itself: nobody waiting is common
        # notify_all(): every waiter, of a queue across threads; an event's own
        # waiters then return without the lock (_wait_for_set).
        waiters.grant_all(_NOTIFIED)
    # lock.release(), written out: this runs on every set.
    lock._block.release()
    if lock._waiters._waiters:
        lock._hand_over()


def _event_clear(self: Any) -> None:
    """``threading.Event.clear``: the stdlib's steps, with the lock of ours called directly."""
    lock = self._cond._lock
    if type(lock) is not _thread_twin.LockType or not lock._block.acquire(False):
        _stdlib_event_clear(self)
        return
    self._flag = False
    lock._block.release()
    if lock._waiters._waiters:
        lock._hand_over()


def _event_wait(self: Any, timeout: float | None = None) -> bool:
    """``threading.Event.wait``: the stdlib's steps, with the lock and condition of ours called directly."""
    cond = self._cond
    lock = cond._lock
    if (
        type(lock) is not _thread_twin.LockType
        or (timeout is not None and timeout <= 0)
        or not lock._block.acquire(False)
    ):
        return _stdlib_event_wait(self, timeout)
    if self._flag:
        lock._block.release()
        if lock._waiters._waiters:
            lock._hand_over()
        return True
    return _wait_for_set(cond._waiters, lock, cond, timeout)


class _DummyThread(_threading._DummyThread):
    """What ``current_thread()`` returns in a task not started as a thread; it leaves with the task."""

    def __init__(self) -> None:
        super().__init__()
        ident = self._ident  # type: ignore[attr-defined]
        me = weakref.ref(self)

        def forget(_gone: Any) -> None:
            dummy = me()
            if dummy is None:
                return
            with _threading._active_limbo_lock:  # type: ignore[attr-defined]
                if _threading._active.get(ident) is dummy:  # type: ignore[attr-defined]
                    del _threading._active[ident]  # type: ignore[attr-defined]
            handle = getattr(dummy, "_handle", None)
            if isinstance(handle, _thread_twin._ThreadHandle):
                handle._set_done()

        current = getcurrent()
        if isinstance(current, Greenlet):
            current.rawlink(forget)
        elif current.parent is not None:
            # A bare greenlet: forget it when it is collected.
            self._corun_watch = weakref.ref(current, forget)


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The stdlib's remaining thread-local captures, pointed at task-local ones (for ``monkey`` to set)."""
    import _threading_local  # noqa: F401 - imported so that its attribute can be replaced

    changes: list[tuple[str, str, Any]] = [
        ("_threading_local", "local", _thread_twin._local),
        # On the stdlib's class itself: subclasses and events made before patching keep working.
        (target.__name__, "Event.set", _event_set),
        (target.__name__, "Event.clear", _event_clear),
        (target.__name__, "Event.wait", _event_wait),
    ]
    # 3.13 tracks dummy threads through a thread-local made at import; a
    # task-local one lets each task's tracker go when that task ends.
    if hasattr(target, "_thread_local_info"):
        changes.append((target.__name__, "_thread_local_info", _thread_twin._local()))
    return changes


# Installed in ``threading``, it is its class and says so, as the stdlib's does
# (``threading.__all__`` checks and pickling by reference go through ``__module__``).
Condition.__module__ = "threading"
