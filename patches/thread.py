"""Cooperative twin of ``_thread``: a started thread is a task, a lock parks tasks.

``start_new_thread`` (and 3.13's ``start_joinable_thread``) spawn a task on
the calling OS thread's hub.  ``get_ident`` names the current task; a
thread's root greenlet keeps its real OS ident, so the main thread stays
the main thread for ``threading`` without any re-registration.

The locks keep ``_thread`` semantics (no owner, release from another task
allowed, acquire with ``blocking``/``timeout``) and also work between OS
threads: a real thread started before patching, or a thread-pool worker
running user code, may share a lock with tasks.  The locked state itself is
taken only without waiting, atomically (a ``TryLock`` of the compiled core,
or an original lock in pure Python); only waiting differs: the parked tasks
are a ``WaitQueue`` that works across threads.  A release that finds waiters hands the lock to the first one
(FIFO, no barging past a parked task), waking it through its own hub.
"""

from __future__ import annotations

import _thread
import contextvars
import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, cast

from greenlet import GreenletExit, getcurrent

from corun import _originals, _threadsync
from corun._waiter import TIMED_OUT
from corun._waitqueue import WaitQueue
from corun.greenlet import Greenlet
from corun.hub import get_hub
from corun.local import local

__all__ = [
    "LockType",
    "RLock",
    "allocate",
    "allocate_lock",
    "get_ident",
    "lock",
    "start_joinable_thread",
    "start_new",
    "start_new_thread",
]

__target__ = "_thread"
__implements__ = [
    "LockType",
    "RLock",
    "_ThreadHandle",
    "_count",
    "_local",
    "_make_thread_handle",
    "_set_sentinel",
    "_shutdown",
    "allocate",
    "allocate_lock",
    "get_ident",
    "lock",
    "start_joinable_thread",
    "start_new",
    "start_new_thread",
]

_real_get_ident = _originals.get_ident


class _local(local):
    """Task-local rather than thread-local storage: ``threading.local`` when patched."""

    __slots__ = ()


_real_lock = _originals.allocate_lock
_real_count = _threadsync.real_thread_count
_try_lock = _threadsync.try_lock
_other_threads_may_wake = _threadsync.other_threads_may_wake

error = _thread.error


def get_ident() -> int:
    """The identity of the current task: the OS thread's ident in its root greenlet, else the task's id."""
    try:
        current = getcurrent()
    except RuntimeError:
        # greenlet's own state is torn down at interpreter exit, while
        # finalizers (logging's among them) still take locks.
        return _real_get_ident()
    if current.parent is None:
        return _real_get_ident()
    return id(current)


# Checks arguments exactly as the C lock does (same exceptions, same text):
# an unlocked original lock accepts any valid pair at once.
_validator = _real_lock()


def _check_acquire_args(blocking: Any, timeout: Any) -> None:
    if _validator.acquire(blocking, timeout):
        _validator.release()


class _Parking:
    """The locked state and the parked waiters shared by ``LockType`` and ``RLock``."""

    __slots__ = ("__weakref__", "_block", "_waiters")
    # The C type's name, for the errors that name it.
    _c_name: str

    def __init__(self) -> None:
        # Held exactly while the lock is; its acquire(False) is atomic between OS threads.
        self._block = _try_lock()
        self._waiters = WaitQueue(_other_threads_may_wake)

    def _take(self, blocking: Any, timeout: Any) -> bool:
        """Take the underlying lock as ``acquire(blocking, timeout)`` would."""
        if blocking is False and timeout == -1:
            return self._block.acquire(False)  # the common try-lock: nothing to check
        if blocking is not True or timeout != -1:
            _check_acquire_args(blocking, timeout)
            if not blocking:
                return self._block.acquire(False)
        if self._block.acquire(False):
            return True
        return self._park(None if timeout == -1 else timeout)

    def _park(self, timeout: float | None) -> bool:
        # Once in line, try again: a release that ran before saw no waiter.
        granted = self._waiters.park(get_hub(), self, timeout, self._give_back, once_in_line=self._try)
        return granted is not TIMED_OUT

    def _try(self) -> bool:
        return self._block.acquire(False)

    def _give_back(self, _unit: Any) -> None:
        # Handed the lock as its wait ended another way: pass it on.
        self._give()

    def _give(self) -> None:
        """Release the underlying lock, handing it to the first waiting task if there is one."""
        self._block.release()
        if self._waiters._waiters:  # the deque itself: no Python-level __bool__ on this path
            self._hand_over()

    def _hand_over(self) -> None:
        waiters = self._waiters
        while waiters:
            # Take the lock on the waiter's behalf: once granted, it owns it.
            if not self._block.acquire(False):
                return  # taken meanwhile; that holder's release hands over
            # (Its waiters are always a queue across threads: grant's own dispatch skipped.)
            if waiters._grant_across_threads(True) is None:
                self._block.release()  # the waiter left; look again
                continue
            return

    def _adopt(self, state: Any) -> None:
        """Take over the lock a hand-over took for this task; ``state`` is what ``_release_save`` gave."""

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._block.locked()

    def __reduce_ex__(self, protocol: Any) -> Any:
        # As the C locks refuse: the held state and the waiters belong to this process.
        raise TypeError(f"cannot pickle {self._c_name!r} object")

    def _at_fork_reinit(self) -> None:
        self._block = _try_lock()
        self._waiters = WaitQueue(_other_threads_may_wake)


class LockType(_Parking):
    """A ``_thread`` lock that parks the calling task instead of the OS thread."""

    __slots__ = ()
    _c_name = "_thread.lock"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; with ``blocking=False`` or a timeout, say whether it was taken."""
        return self._take(blocking, timeout)

    def release(self) -> None:
        """Release the lock, handing it to the first waiting task if there is one.

        Raises:
            RuntimeError: the lock is not locked.
        """
        self._block.release()
        if self._waiters._waiters:
            self._hand_over()

    acquire_lock = acquire
    release_lock = release
    locked_lock = _Parking.locked

    def __enter__(self) -> bool:
        if self._block.acquire(False):
            return True
        return self._park(None)

    def __exit__(self, *exc_info: object) -> None:
        self._block.release()
        if self._waiters._waiters:
            self._hand_over()

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        return f"<{state} {type(self).__module__}.{type(self).__qualname__} object at {id(self):#x}>"


allocate_lock = allocate = lock = LockType


class RLock(_Parking):
    """A reentrant lock owned by the task that took it."""

    __slots__ = ("_count", "_owner")
    _c_name = "_thread.RLock"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The C RLock ignores arguments; 3.13 warns that it will refuse them.
        if (args or kwargs) and sys.version_info >= (3, 13):
            import warnings

            warnings.warn(
                "Passing arguments to RLock is deprecated and will be removed in 3.15",
                DeprecationWarning,
                stacklevel=2,
            )
        super().__init__()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, or count one more hold if the current task has it already."""
        me = get_ident()
        if self._owner == me:
            self._count += 1
            return True
        # The common call (no arguments, lock free) without _take's checks.
        if not (blocking is True and timeout == -1 and self._block.acquire(False)) and not self._take(
            blocking, timeout
        ):
            return False
        self._owner = me
        self._count = 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        """Drop one hold; the last one releases the lock.

        Raises:
            RuntimeError: the current task does not hold the lock.
        """
        me = get_ident()
        if self._owner != me or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._give()

    def __exit__(self, *exc_info: object) -> None:
        # release() written out: a with block pays for one Python call on the way out.
        me = get_ident()
        if self._owner != me or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._block.release()
            if self._waiters._waiters:
                self._hand_over()

    def _is_owned(self) -> bool:
        return self._owner == get_ident()

    def _recursion_count(self) -> int:
        return self._count if self._owner == get_ident() else 0

    def _release_save(self) -> tuple[int, int | None]:
        if not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._give()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self._take(True, -1)
        self._count, self._owner = state

    def _adopt(self, state: tuple[int, int | None]) -> None:
        self._count, self._owner = state

    def _at_fork_reinit(self) -> None:
        super()._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        return (
            f"<{state} {type(self).__module__}.{type(self).__qualname__} object "
            f"owner={self._owner or 0} count={self._count} at {id(self):#x}>"
        )


# -- threads as tasks ------------------------------------------------------------

# Tasks started as threads and still running: _count() adds them to the OS threads.
_running: set[Greenlet[Any]] = set()
# Locks from _set_sentinel, per task, released when the task ends (<= 3.12).
_sentinels: dict[int, list[LockType]] = {}


class _ThreadHandle:
    """What ``threading`` (3.13) joins: the end of one thread, here of one task."""

    __slots__ = ("__weakref__", "_done", "_ended", "_ident", "_started")

    def __init__(self) -> None:
        self._ident = 0
        self._started = False
        self._ended = False
        self._done = LockType()  # held until the thread ends

    @property
    def ident(self) -> int:
        """The ident of the thread, 0 before it starts."""
        return self._ident

    def _start(self, ident: int) -> None:
        self._ident = ident
        self._started = True
        self._done.acquire()

    def is_done(self) -> bool:
        """Whether the thread has ended."""
        return self._ended

    def _set_done(self) -> None:
        if not self._started:
            raise RuntimeError("thread not started")
        if not self._ended:
            self._ended = True
            _non_daemon.discard(self)
            self._done.release()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread ends, or until ``timeout`` seconds have passed."""
        if not self._started:
            raise RuntimeError("thread not started")
        if self._ended:
            return
        if self._ident == get_ident():
            raise RuntimeError("Cannot join current thread")
        if timeout is None or timeout < 0:
            timeout = -1
        if self._done.acquire(True, timeout):
            self._done.release()

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} object: ident={self._ident}>"


# Handles of non-daemon threads still running: _shutdown() waits for them.
_non_daemon: set[_ThreadHandle] = set()


def _make_thread_handle(ident: int) -> _ThreadHandle:
    handle = _ThreadHandle()
    handle._start(ident)
    return handle


def _run_thread(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], handle: _ThreadHandle | None
) -> None:
    """The body of a task started as a thread: report what a thread would, then mark it ended."""
    task = getcurrent()
    sentinels: list[LockType] = []
    _sentinels[id(task)] = sentinels
    try:
        function(*args, **kwargs)
    except SystemExit:
        pass
    except GreenletExit:
        raise  # killed as a task: the task machinery treats it as a normal end
    except KeyboardInterrupt:
        raise  # the task machinery delivers it to the main task
    except BaseException as exc:
        if sys.version_info >= (3, 13):
            message, culprit = f"Exception ignored in thread started by {function!r}", None
        else:
            message, culprit = "Exception ignored in thread started by", function
        hook_args = _unraisable_hook_args_type()((type(exc), exc, exc.__traceback__, message, culprit))
        try:
            sys.unraisablehook(hook_args)
        finally:
            del exc, hook_args
    finally:
        _running.discard(task)
        _signal_masks.pop(id(task), None)
        del _sentinels[id(task)]
        for sentinel in sentinels:
            if sentinel.locked():
                sentinel.release()
        if handle is not None:
            handle._set_done()


_hook_args_type: list[Any] = []


def _unraisable_hook_args_type() -> Any:
    """The struct sequence type ``sys.unraisablehook`` takes, which ``sys`` does not export."""
    if not _hook_args_type:
        old = sys.unraisablehook
        sys.unraisablehook = lambda args: _hook_args_type.append(type(args))

        class _FailsToDelete:
            def __del__(self) -> None:
                raise RuntimeError

        try:
            _FailsToDelete()
        finally:
            sys.unraisablehook = old
    return _hook_args_type[0]


def _spawn_thread(function: Any, args: Any, kwargs: Any, handle: _ThreadHandle | None) -> int:
    task: Greenlet[None] = Greenlet(_run_thread, function, args, kwargs, handle)
    # A new OS thread starts in an empty context, not a copy of its creator's.
    task.gr_context = contextvars.Context()
    task.name = f"thread {getattr(function, '__qualname__', function)!s}"
    _running.add(task)
    ident = id(task)
    if handle is not None:
        handle._start(ident)
    task.start()
    return ident


def start_new_thread(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None = None, /
) -> int:
    """Run ``function(*args, **kwargs)`` in a new task; return its ident."""
    if not callable(function):
        raise TypeError("first arg must be callable")
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    return _spawn_thread(function, args, kwargs or {}, None)


start_new = start_new_thread


def start_joinable_thread(
    function: Callable[[], Any], handle: _ThreadHandle | None = None, daemon: bool = True
) -> _ThreadHandle:
    """Run ``function()`` in a new task; return the handle that joins it (3.13)."""
    if not callable(function):
        raise TypeError("thread function must be callable")
    if handle is None:
        handle = _ThreadHandle()
    elif not isinstance(handle, _ThreadHandle):
        raise TypeError(f"'handle' must be a _ThreadHandle, not {type(handle).__name__}")
    elif handle._started:
        raise RuntimeError("thread already started")
    _spawn_thread(function, (), {}, handle)
    if not daemon:
        _non_daemon.add(handle)
    return handle


def _shutdown() -> None:
    """Wait for every non-daemon thread started here, except the calling one (3.13)."""
    me = get_ident()
    while True:
        pending = [h for h in list(_non_daemon) if not h._ended and h._ident != me]
        if not pending:
            return
        for handle in pending:
            handle.join()


def _set_sentinel() -> LockType:
    """A lock released when the current task ends: what ``Thread.join`` waits on (<= 3.12)."""
    sentinel = LockType()
    current = getcurrent()
    mine = _sentinels.get(id(current))
    if mine is not None:
        mine.append(sentinel)
    elif isinstance(current, Greenlet):
        current.rawlink(lambda _task: sentinel.release() if sentinel.locked() else None)
    return sentinel


def _count() -> int:
    """Threads running besides the main one: OS threads plus tasks started as threads."""
    return _real_count() + len(_running)


# The signal mask of each task started as a thread that has set one.
_signal_masks: dict[int, set[int]] = {}
_original_pthread_sigmask: Any = getattr(signal, "pthread_sigmask", None)
_NSIG: int = getattr(signal, "NSIG", 65)


def pthread_sigmask(how: int, mask: Any, /) -> set[Any]:
    """``signal.pthread_sigmask`` that gives a task started as a thread a signal mask of its own.

    An OS thread's mask is its own: blocking every signal in a helper thread
    (as ``multiprocessing``'s resource sharer does) leaves the main thread,
    and processes forked from it, as they were.  Such a thread is a task on
    the OS thread here, so its mask is only recorded, starting from the OS
    thread's; signals are handled in the main thread anyway.  Other tasks
    change the OS thread's mask, as the stdlib's call does.
    """
    task = getcurrent()
    if task not in _running:
        return cast(set[Any], _original_pthread_sigmask(how, mask))
    if how not in (signal.SIG_BLOCK, signal.SIG_UNBLOCK, signal.SIG_SETMASK):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    wanted = set()
    for sig in mask:
        number = int(sig)
        if not 1 <= number < _NSIG:
            raise ValueError(f"signal number {number} out of range [1; {_NSIG - 1}]")
        wanted.add(number)
    key = id(task)
    old = _signal_masks.get(key)
    if old is None:
        old = {int(sig) for sig in _original_pthread_sigmask(signal.SIG_BLOCK, ())}
    if how == signal.SIG_BLOCK:
        new = old | wanted
    elif how == signal.SIG_UNBLOCK:
        new = old - wanted
    else:
        new = wanted
    _signal_masks[key] = new
    return {_signal_or_number(number) for number in old}


def _signal_or_number(number: int) -> Any:
    """``signal.Signals(number)``, or the number where it names no known signal (as the stdlib returns)."""
    try:
        return signal.Signals(number)
    except ValueError:
        return number


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """Give tasks started as threads their own signal mask (for ``monkey`` to set)."""
    if _original_pthread_sigmask is None:
        return []
    return [("signal", "pthread_sigmask", pthread_sigmask)]


def _after_fork_in_child() -> None:
    """Only the forking task lives on in the child: every other thread has ended."""
    _threadsync.forked()
    me = get_ident()
    for handle in list(_non_daemon):
        if handle._ident != me:
            _non_daemon.discard(handle)
            handle._ended = True
    current = getcurrent()
    for task in list(_running):
        if task is not current:
            _running.discard(task)
            _signal_masks.pop(id(task), None)
    for key in list(_sentinels):
        if key != id(current):
            for sentinel in _sentinels.pop(key):
                sentinel._at_fork_reinit()


os.register_at_fork(after_in_child=_after_fork_in_child)


# Installed in ``_thread`` (and ``threading``), they are its objects and say
# so, as the C ones do: ``threading.__all__`` checks and pickling by
# reference go through ``__module__``.
for _public in (LockType, RLock, _local, get_ident, start_new_thread, start_joinable_thread, allocate_lock):
    _public.__module__ = "_thread"
del _public
# Installed in ``signal``.
pthread_sigmask.__module__ = "signal"
