"""What the readiness back ends share: the table of fds, their waiters, and the rules for both.

Facts both back ends rely on:

- Any number of tasks may wait on one fd in each direction, as OS threads
  may block in ``select()`` or ``recv()`` on one fd together.  Readiness
  wakes every waiter of that direction; each retries its own syscall, and
  one that meets ``EAGAIN`` (another took the data) simply waits again.
- Registrations are level-triggered and kept while an fd is in use: the
  kernel mask is the union of what is still waited for, and an fd reported
  ready with nobody waiting in that direction is narrowed to what is left,
  or dropped, so the poll cannot spin on it.
- A kept registration may be stale once nobody waits: the fd may have been
  closed (the kernel then drops it) and its number reused.  The next wait
  re-asserts it, unless the fd's owner promised to call ``close_fd`` before
  every close (``notifies_close``), which saves a syscall per wait.
- ``close_fd`` runs before an fd is closed: it unregisters and hands back
  every waiter of that fd, so they are woken with an error, not left asleep.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["READ", "WRITE", "FdState", "FdTable"]

# Final: compiled with the core, they are C constants rather than lookups in the module's dict.
READ: Final = 0x001  # EPOLLIN / POLLIN
WRITE: Final = 0x004  # EPOLLOUT / POLLOUT
_ERRORS: Final = 0x008 | 0x010  # EPOLLERR | EPOLLHUP: reported whatever the mask, wake both directions
_READ_EVENTS: Final = READ | _ERRORS
_WRITE_EVENTS: Final = WRITE | _ERRORS


class FdState:
    """One fd's waits: who waits to read, who waits to write, what the kernel watches."""

    __slots__ = ("mask", "notifies_close", "readers", "writers")

    def __init__(self) -> None:
        self.readers: list[Any] = []
        self.writers: list[Any] = []
        self.mask = 0  # READ | WRITE as registered with the kernel (0: not registered)
        # The owner calls close_fd before every close, so a kept registration is trustworthy.
        self.notifies_close = False

    def wanted(self) -> int:
        """The directions somebody still waits for."""
        return (READ if self.readers else 0) | (WRITE if self.writers else 0)

    def __repr__(self) -> str:
        return f"<FdState readers={len(self.readers)} writers={len(self.writers)} mask={self.mask}>"


class FdTable:
    """The fd table and wake-up rules of a readiness back end; subclasses talk to the kernel.

    A subclass provides ``_kernel_set(fd, old_mask, new_mask)`` (register,
    or change or re-assert a registration; may raise ``OSError``),
    ``_kernel_forget(fd)`` (True if the kernel knew it),
    ``_kernel_poll(timeout)`` (a list of ``(fd, events)`` in epoll's bits)
    and ``_kernel_open(waker_fd)``/``close()``.
    """

    #: the back end's name in ``statistics()``
    name = "?"

    def __init__(self, waker_fd: int) -> None:
        self._fds: dict[int, FdState] = {}
        self.waiting = 0
        self._polls = 0
        self._events = 0
        self._waker_fd = waker_fd
        self._kernel_open(waker_fd)

    # -- kernel side, per back end ------------------------------------------------------

    def _kernel_open(self, waker_fd: int) -> None:
        raise NotImplementedError

    def _kernel_set(self, fd: int, old_mask: int, new_mask: int) -> None:
        raise NotImplementedError

    def _kernel_forget(self, fd: int) -> bool:
        raise NotImplementedError

    def _kernel_poll(self, timeout: float) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _unknown_fd_ready(self, fd: int) -> bool:
        """An fd the table does not know was reported: unregister it; False if that failed."""
        return self._kernel_forget(fd)

    def close(self) -> None:
        """Release the kernel object."""
        raise NotImplementedError

    # -- waits ----------------------------------------------------------------------------

    def add(self, fd: int, event: int, waiter: Any, notifies_close: bool = False) -> None:
        """Wake ``waiter`` when ``fd`` is ready for ``event`` (``READ`` or ``WRITE``).

        Args:
            notifies_close: the fd's owner calls ``close_fd`` before every
                close, so a registration kept for it cannot have gone stale.
        """
        state = self._fds.get(fd)
        if state is None:
            state = self._fds[fd] = FdState()
        waiters = state.readers if event == READ else state.writers
        mask = state.mask
        if mask & event != event or (
            not state.readers and not state.writers and not (notifies_close and state.notifies_close)
        ):
            try:
                self._set_mask(fd, state, mask | event)
            except BaseException:
                if not state.readers and not state.writers and fd in self._fds:
                    del self._fds[fd]
                raise
        state.notifies_close = notifies_close
        waiters.append(waiter)
        self.waiting += 1

    def remove(self, fd: int, event: int, waiter: Any) -> None:
        """Forget ``waiter`` if it still waits; the kernel registration stays until the fd is idle."""
        state = self._fds.get(fd)
        if state is not None:
            waiters = state.readers if event == READ else state.writers
            if waiter in waiters:
                waiters.remove(waiter)
                self.waiting -= 1

    def waiter_count(self, fd: int, event: int) -> int:
        """How many tasks wait for ``fd`` to be ready for ``event``."""
        state = self._fds.get(fd)
        if state is None:
            return 0
        return len(state.readers if event == READ else state.writers)

    def poll(self, timeout: float) -> tuple[list[Any], bool]:
        """Wait up to ``timeout`` (-1: forever); return (waiters to wake, waker fired)."""
        fds = self._fds
        woken: list[Any] = []
        waker = False
        unreachable = False
        events = self._kernel_poll(timeout)
        self._polls += 1
        self._events += len(events)
        waker_fd = self._waker_fd
        for fd, ev in events:
            if fd == waker_fd:
                waker = True
                continue
            state = fds.get(fd)
            if state is None:
                if not self._unknown_fd_ready(fd):
                    unreachable = True  # its number no longer names it: closed after a dup
                continue
            served = False
            if ev & _READ_EVENTS and state.readers:
                readers = state.readers
                woken += readers
                self.waiting -= len(readers)
                readers.clear()
                served = True
            if ev & _WRITE_EVENTS and state.writers:
                writers = state.writers
                woken += writers
                self.waiting -= len(writers)
                writers.clear()
                served = True
            if not served:
                # Ready with nobody waiting that way: narrow the registration to
                # the waits left, or drop it, so the poll cannot spin on it.
                try:
                    self._set_mask(fd, state, state.wanted())
                except OSError:
                    fds.pop(fd, None)  # closed behind our back (no close_fd)
        if unreachable:
            woken += self._rebuild()
        return woken, waker

    def close_fd(self, fd: int) -> list[Any]:
        """Unregister ``fd`` before it is closed; return every waiter of it, to be woken."""
        state = self._fds.pop(fd, None)
        if state is None:
            return []
        self._kernel_forget(fd)
        waiters = state.readers + state.writers
        self.waiting -= len(waiters)
        return waiters

    def forget_all(self) -> list[Any]:
        """Unregister every fd (a forked child dropping its parent's waits); return their waiters."""
        waiters: list[Any] = []
        for fd in list(self._fds):
            waiters += self.close_fd(fd)
        return waiters

    def reinit(self, waker_fd: int) -> None:
        """After fork: a new kernel object (the old one is shared with the parent), the same waits."""
        # Closing our copy of the parent's epoll fd leaves the parent's set
        # intact; epoll_ctl on it would not.
        self.close()
        self._waker_fd = waker_fd
        self._kernel_open(waker_fd)
        for fd, state in list(self._fds.items()):
            state.mask = 0
            want = state.wanted()
            if want:
                self._set_mask(fd, state, want)
            else:
                del self._fds[fd]

    def statistics(self) -> dict[str, Any]:
        """Fds registered, tasks waiting on them, polls made and events reported since start."""
        return {
            "backend": self.name,
            "fds": len(self._fds),
            "waiters": self.waiting,
            "polls": self._polls,
            "events": self._events,
        }

    # -- helpers --------------------------------------------------------------------------

    def _set_mask(self, fd: int, state: FdState, mask: int) -> None:
        if mask == 0:
            del self._fds[fd]
            self._kernel_forget(fd)
            return
        self._kernel_set(fd, state.mask, mask)
        state.mask = mask

    def _rebuild(self) -> list[Any]:
        """Start a new kernel object holding only the live waits.

        Returns:
            The waiters whose fd could not be registered again (it was closed
            without ``close_fd``); woken, they meet the error themselves.
        """
        self.close()
        self._kernel_open(self._waker_fd)
        lost: list[Any] = []
        for fd, state in list(self._fds.items()):
            state.mask = 0
            try:
                self._set_mask(fd, state, state.wanted())
            except OSError:
                del self._fds[fd]
                waiters = state.readers + state.writers
                self.waiting -= len(waiters)
                lost += waiters
        return lost
