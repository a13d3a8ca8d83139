"""Cooperative twin of :mod:`select`: ``select``, ``poll`` and ``epoll`` that block only their task.

Facts this module relies on:

- A readiness call with a zero timeout never blocks, and it checks its
  arguments exactly as the blocking call does (bad or negative fds, closed
  objects, closed epoll sets).  So every call here first asks the original
  with timeout 0; only when nothing is ready does the task wait on the hub,
  and then it asks again.  A wake-up only means "look again": it can be
  spurious, or another task may have consumed the data first.
- A task waits for any of several fds by parking on one ``Waiter`` that all
  its registrations share: whichever fd fires first resumes it, and
  ``Waiter.switch`` does nothing to a task that already left the wait.
- The hub watches fds for readability and writability only, for any number
  of tasks at once (a ``select`` in one task beside a ``recv`` in another on
  the same fd is fine).  What it cannot watch (``POLLPRI``, which is
  select's "exceptional" set; the rarer poll bits) goes into a private epoll
  set whose own fd the task waits on, since an epoll fd is readable while it
  holds events.  That set is edge-triggered and drained after each wake-up, so a
  condition that persists without making the call report anything wakes the
  task once, not in a loop.
- ``Hub.notify_closing`` wakes the tasks waiting on an fd about to be closed;
  the second look then meets the closed fd and fails as the original does
  (``EBADF``, ``ValueError`` for a closed object, ``POLLNVAL`` in ``poll``).
- ``select.epoll`` cannot be subclassed, so ``epoll`` here wraps one.
"""

from __future__ import annotations

import math
import operator
import select as _select
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from greenlet import getcurrent

from corun._waiter import Waiter
from corun.hub import READ, WRITE, Hub, get_hub, notify_closing
from corun.hub import sleep as hub_sleep

__target__ = "select"

T = TypeVar("T")

# The originals, captured before patching replaces them on the module.
_original_select = _select.select
_original_poll: Any = getattr(_select, "poll", None)
_original_epoll: Any = getattr(_select, "epoll", None)

# Poll bits; epoll uses the same values for the same conditions on Linux.
POLLIN = getattr(_select, "POLLIN", 0x001)
POLLPRI = getattr(_select, "POLLPRI", 0x002)
POLLOUT = getattr(_select, "POLLOUT", 0x004)
_READ_BITS = POLLIN | getattr(_select, "POLLRDNORM", 0)
_WRITE_BITS = POLLOUT | getattr(_select, "POLLWRNORM", 0)
_EPOLLET = getattr(_select, "EPOLLET", 0)

# Timeouts become a signed 64-bit count of nanoseconds in the originals.
_MAX_NANOSECONDS = 2**63 - 1
# poll(2) takes its timeout as a C int of milliseconds.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# Without epoll, what the hub cannot watch is looked at again this often.
_LOOK_AGAIN_SECONDS = 0.05

FileDescriptorLike = Any  # an int, or an object with a fileno() method


# -- waiting for any of several fds --------------------------------------------


def _park(waiter: Waiter, timeout: float | None) -> None:
    """Park on ``waiter`` (the park itself takes this task's running asyncio loop out meanwhile)."""
    waiter.get(timeout)


class _MultiWait:
    """One task's wait for any of several fds, over all the retries of one call.

    ``wants`` maps each fd to a poll event mask (0: only errors and hang-ups).
    """

    def __init__(self, hub: Hub, wants: dict[int, int], what: str) -> None:
        self.hub = hub
        self.wants = wants
        self.what = what
        self._private: Any = None  # the private epoll set, made when first needed
        self._private_masks: dict[int, int] = {}
        self._look_again: float | None = None

    def __enter__(self) -> _MultiWait:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        private = self._private
        if private is not None:
            self._private = None
            self.hub.notify_closing(private.fileno())
            private.close()

    def wait(self, timeout: float | None) -> None:
        """Park until some fd may be ready, or ``timeout`` passes (no error then)."""
        hub = self.hub
        w = Waiter(hub, self.what)
        added: list[tuple[int, int]] = []
        try:
            for fd, mask in self.wants.items():
                rest = mask
                for event, bits in ((READ, _READ_BITS), (WRITE, _WRITE_BITS)):
                    if mask & bits:
                        try:
                            hub.watch_fd(fd, event, w)
                        except PermissionError:
                            # Not pollable (a regular file): such an fd is always
                            # ready, so the first look already reported it.
                            pass
                        else:
                            added.append((fd, event))
                            rest &= ~bits
                if rest or not mask:
                    self._watch_privately(fd, rest)
            if self._private is not None:
                pfd = self._private.fileno()
                hub.watch_fd(pfd, READ, w)
                added.append((pfd, READ))
            elif self._look_again is not None:
                timeout = self._look_again if timeout is None else min(timeout, self._look_again)
            _park(w, timeout)
        finally:
            for fd, event in added:
                hub.unwatch_fd(fd, event, w)
        if self._private is not None:
            # Consume what woke us: the fd stays readable until its events are read.
            self._private.poll(0, -1)

    def _watch_privately(self, fd: int, mask: int) -> None:
        if _original_epoll is None:
            self._look_again = _LOOK_AGAIN_SECONDS
            return
        old = self._private_masks.get(fd)
        new = mask if old is None else old | mask
        if new == old:
            return
        if self._private is None:
            self._private = _original_epoll()
        try:
            if old is None:
                self._private.register(fd, new | _EPOLLET)
            else:
                self._private.modify(fd, new | _EPOLLET)
        except PermissionError:
            pass  # a regular file is never "exceptional": nothing to wait for
        self._private_masks[fd] = new


def _wait_for(
    check: Callable[[], T],
    wants: Callable[[], dict[int, int]],
    timeout: float | None,
    what: Callable[[dict[int, int]], str],
) -> T:
    """Call ``check`` (non-blocking) until it returns something true or ``timeout`` passes.

    Args:
        check: the original call with timeout 0.
        wants: the fds to wait on, with their poll masks (asked only if needed).
        timeout: seconds; None waits for as long as it takes.
        what: says what the task waits on, should a hang be reported.

    Returns:
        The last result of ``check``.
    """
    result = check()
    hub = get_hub()
    if timeout is not None and timeout <= 0:
        return result
    if result:
        # A call that was willing to wait is still a switch point when fds
        # are ready at once: a loop over always-ready fds (a writable
        # socket) would otherwise starve every other task.
        if getcurrent() is not hub:
            hub_sleep(0)
        return result
    deadline = None if timeout is None else hub.clock() + timeout
    fds = wants()
    with _MultiWait(hub, fds, what(fds)) as waiting:
        while True:
            remaining = None
            if deadline is not None:
                remaining = deadline - hub.clock()
                if remaining <= 0:
                    return result
            waiting.wait(remaining)
            result = check()
            if result:
                return result


# -- argument checks, as the originals make them -------------------------------


def _number(value: object, message: str, nanoseconds_per_unit: float) -> float:
    """A float or an integer (``__index__``), checked as the C timeout converters do."""
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        number: float = value
    else:
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(message) from None
    if abs(number) * nanoseconds_per_unit > _MAX_NANOSECONDS:
        raise OverflowError("timestamp too large to convert to C _PyTime_t")
    return number


def _fileno(obj: FileDescriptorLike) -> int:
    """The fd of an int or of an object with ``fileno()`` (already checked by the original)."""
    if isinstance(obj, int):
        return int(obj)
    return int(obj.fileno())


def _sequence(items: Iterable[Any]) -> list[Any] | tuple[Any, ...]:
    if isinstance(items, (list, tuple)):
        return items
    try:
        return list(items)
    except TypeError:
        raise TypeError("arguments 1-3 must be sequences") from None


# -- select --------------------------------------------------------------------


def select(
    rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """Wait until some of the objects are ready, suspending only the calling task.

    Same arguments, results and errors as ``select.select``: the objects are
    fds or have ``fileno()``; the lists returned hold the objects given.

    Raises:
        ValueError: a negative fd or timeout.
        OSError: (EBADF) an fd that is not open, or was closed while waiting.
    """
    if timeout is None:
        seconds = None
    else:
        seconds = _number(timeout, "timeout must be a float or None", 1e9)
        if seconds < 0:
            raise ValueError("timeout must be non-negative")
    r, w, x = _sequence(rlist), _sequence(wlist), _sequence(xlist)

    def check() -> tuple[list[Any], list[Any], list[Any]] | None:
        ready = _original_select(r, w, x, 0)
        return ready if ready[0] or ready[1] or ready[2] else None

    def wants() -> dict[int, int]:
        masks: dict[int, int] = {}
        for objs, bits in ((r, POLLIN), (w, POLLOUT), (x, POLLPRI)):
            for obj in objs:
                fd = _fileno(obj)
                masks[fd] = masks.get(fd, 0) | bits
        return masks

    result = _wait_for(check, wants, seconds, lambda fds: f"select() on fds {sorted(fds)}")
    return ([], [], []) if result is None else result


# -- poll ----------------------------------------------------------------------


class poll:
    """A cooperative ``select.poll()`` object: ``poll`` suspends only the calling task."""

    __slots__ = ("__weakref__", "_masks", "_poll", "_polling")

    def __init__(self) -> None:
        self._poll = _original_poll()
        self._masks: dict[int, int] = {}
        self._polling = False

    def register(self, fd: FileDescriptorLike, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        """Watch ``fd`` for the events in ``eventmask`` (again: replace its mask)."""
        self._poll.register(fd, eventmask)
        self._masks[_fileno(fd)] = operator.index(eventmask)

    def modify(self, fd: FileDescriptorLike, eventmask: int) -> None:
        """Change the events watched on a registered ``fd`` (``OSError`` ENOENT if it is not)."""
        self._poll.modify(fd, eventmask)
        self._masks[_fileno(fd)] = operator.index(eventmask)

    def unregister(self, fd: FileDescriptorLike) -> None:
        """Stop watching ``fd`` (``KeyError`` if it is not registered)."""
        self._poll.unregister(fd)
        self._masks.pop(_fileno(fd), None)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` milliseconds (None or negative: no limit); return ``(fd, events)``.

        Raises:
            RuntimeError: another task is already in ``poll`` on this object.
        """
        seconds = None
        if timeout is not None:
            ms = _number(timeout, "timeout must be an integer or None", 1e6)
            # Rounded up, as the original does, before it must fit a C int.
            if not _INT_MIN <= math.ceil(ms) <= _INT_MAX:
                raise OverflowError("timeout is too large")
            seconds = None if ms < 0 else ms / 1000
        if self._polling:
            raise RuntimeError("concurrent poll() invocation")
        self._polling = True
        try:
            original = self._poll
            masks = self._masks
            return _wait_for(
                lambda: original.poll(0),
                lambda: dict(masks),
                seconds,
                lambda fds: f"poll() on fds {sorted(fds)}",
            )
        finally:
            self._polling = False


# -- epoll ---------------------------------------------------------------------


class epoll:
    """A cooperative ``select.epoll``: ``poll`` suspends only the calling task."""

    __slots__ = ("__weakref__", "_epoll")

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        self._epoll = _original_epoll(sizehint, flags)

    @classmethod
    def fromfd(cls, fd: int) -> epoll:
        """Wrap an existing epoll fd."""
        self = cls.__new__(cls)
        self._epoll = _original_epoll.fromfd(fd)
        return self

    def __repr__(self) -> str:
        state = "closed" if self._epoll.closed else f"fd={self._epoll.fileno()}"
        return f"<cooperative select.epoll {state}>"

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return bool(self._epoll.closed)

    def fileno(self) -> int:
        """The epoll fd."""
        return int(self._epoll.fileno())

    def close(self) -> None:
        """Close the epoll fd, first waking the tasks polling it."""
        ep = self._epoll
        if not ep.closed:
            notify_closing(ep.fileno())
            ep.close()

    def __enter__(self) -> epoll:
        self._epoll.__enter__()  # raises if closed, as the original does
        return self

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def register(self, fd: FileDescriptorLike, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        """Watch ``fd`` for the events in ``eventmask``."""
        self._epoll.register(fd, eventmask)

    def modify(self, fd: FileDescriptorLike, eventmask: int) -> None:
        """Change the events watched on a registered ``fd``."""
        self._epoll.modify(fd, eventmask)

    def unregister(self, fd: FileDescriptorLike) -> None:
        """Stop watching ``fd``."""
        self._epoll.unregister(fd)

    def poll(self, timeout: float | None = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None or negative: no limit); return ``(fd, events)``."""
        seconds = None
        if timeout is not None:
            seconds = _number(timeout, "timeout must be an integer or None", 1e9)
            if seconds < 0:
                seconds = None
        ep = self._epoll
        return _wait_for(
            lambda: ep.poll(0, maxevents),
            lambda: {ep.fileno(): POLLIN},
            seconds,
            lambda fds: f"epoll.poll() on epoll fd {next(iter(fds))}",
        )


# -- what monkey installs -------------------------------------------------------

__implements__ = ["select"]
if _original_poll is not None:
    __implements__.append("poll")
if _original_epoll is not None:
    __implements__.append("epoll")
__all__ = list(__implements__)

# Platform pollers with no cooperative version here: removed while patched, so
# code that probes for them (as ``selectors`` does) falls back to the ones above.
__removes__ = [name for name in ("devpoll", "kqueue") if hasattr(_select, name)]


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The stdlib modules that copied ``select.select`` when imported, and the fix (for ``monkey`` to set)."""
    pty = sys.modules.get("pty")
    if pty is not None and getattr(pty, "select", None) is _original_select:
        return [("pty", "select", select)]
    return []
