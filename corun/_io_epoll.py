"""The epoll readiness back end (Linux).

Facts about epoll this module relies on:

- epoll registers the open file *description*, not the fd number.  An fd that
  is duplicated and then closed stays registered through the duplicate, but
  can no longer be removed by its number, and ``epoll_wait`` keeps reporting
  it: the loop spins.  So every close path unregisters first
  (``Hub.notify_closing``), and an fd reported ready with no waiter is
  unregistered at once.  When even that fails (the fd was closed after a
  ``dup`` without ``notify_closing``), only a new epoll set gets rid of it.
- Level-triggered registrations survive across waits.  Keeping one while the
  fd is in use saves the ``EPOLL_CTL_DEL`` after every blocking ``recv``.  The
  next wait still re-asserts it (one ``EPOLL_CTL_MOD``): while nobody waited,
  the fd may have been closed and its number reused, and a registration this
  table only believes in would never wake anyone.
- ``EPOLLERR`` and ``EPOLLHUP`` are reported whatever the mask says; both wake
  the reader and the writer, who then meet the error in their own syscall.
- The kernel drops a registration silently when the last fd of its file is
  closed, so this table can be stale: ``EEXIST`` on ADD and ``ENOENT`` on
  MOD/DEL are expected and handled.
"""

from __future__ import annotations

from typing import Any

from . import _originals

__all__ = ["EpollIO"]

READ = 0x001  # EPOLLIN
WRITE = 0x004  # EPOLLOUT
_READ_EVENTS = 0x001 | 0x008 | 0x010  # IN | ERR | HUP
_WRITE_EVENTS = 0x004 | 0x008 | 0x010  # OUT | ERR | HUP


def _new_epoll() -> Any:
    if _originals.epoll is None:
        raise OSError("epoll is not available on this platform")
    return _originals.epoll()


class EpollIO:
    """Readiness waits on file descriptors, one reader and one writer per fd."""

    def __init__(self, waker_fd: int) -> None:
        self._epoll = _new_epoll()
        # fd -> [reader waiter, writer waiter, registered mask, owner notifies closes]
        self._fds: dict[int, list[Any]] = {}
        self.waiting = 0
        self._waker_fd = waker_fd
        self._epoll.register(waker_fd, READ)

    def waiter_for(self, fd: int, event: int) -> Any:
        """The waiter already waiting on (fd, event), or None."""
        entry = self._fds.get(fd)
        if entry is None:
            return None
        return entry[0 if event == READ else 1]

    def add(self, fd: int, event: int, waiter: Any, notifies_close: bool = False) -> None:
        """Wake ``waiter`` when ``fd`` is ready for ``event``.

        ``notifies_close``: the fd's owner calls ``close_fd`` before every
        close, so a registration kept for it cannot have gone stale.
        """
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._fds[fd] = [None, None, 0, False]
        mask = entry[2]
        # With nobody waiting, a kept registration may be stale (see above),
        # unless it was last confirmed for an owner that notifies its closes.
        if mask & event != event or (
            entry[0] is None and entry[1] is None and not (notifies_close and entry[3])
        ):
            try:
                self._set_mask(fd, entry, mask | event)
            except BaseException:
                if entry[0] is None and entry[1] is None:
                    del self._fds[fd]
                raise
        entry[3] = notifies_close
        entry[0 if event == READ else 1] = waiter
        self.waiting += 1

    def remove(self, fd: int, event: int, waiter: Any) -> None:
        """Forget ``waiter``; the kernel registration stays until it is idle."""
        entry = self._fds.get(fd)
        slot = 0 if event == READ else 1
        if entry is not None and entry[slot] is waiter:
            entry[slot] = None
            self.waiting -= 1

    def poll(self, timeout: float) -> tuple[list[Any], bool]:
        """Wait up to ``timeout`` (-1: forever); return (waiters to wake, waker fired)."""
        fds = self._fds
        woken: list[Any] = []
        waker = False
        unreachable = False
        for fd, ev in self._epoll.poll(timeout):
            if fd == self._waker_fd:
                waker = True
                continue
            entry = fds.get(fd)
            if entry is None:
                if not self._forget(fd):
                    # Its number no longer names it: closed after a dup.
                    unreachable = True
                continue
            served = False
            if entry[0] is not None and ev & _READ_EVENTS:
                woken.append(entry[0])
                entry[0] = None
                self.waiting -= 1
                served = True
            if entry[1] is not None and ev & _WRITE_EVENTS:
                woken.append(entry[1])
                entry[1] = None
                self.waiting -= 1
                served = True
            if not served:
                # Ready with nobody waiting: narrow the registration to the
                # waiters left, or drop it, so epoll_wait cannot spin on it.
                want = (READ if entry[0] is not None else 0) | (WRITE if entry[1] is not None else 0)
                try:
                    self._set_mask(fd, entry, want)
                except OSError:
                    # Closed behind our back (no notify_closing): forget it.
                    fds.pop(fd, None)
        if unreachable:
            woken += self._rebuild()
        return woken, waker

    def close_fd(self, fd: int) -> list[Any]:
        """Unregister ``fd`` before it is closed; return the waiters to wake."""
        entry = self._fds.pop(fd, None)
        if entry is None:
            return []
        self._forget(fd)
        waiters = [w for w in entry[:2] if w is not None]
        self.waiting -= len(waiters)
        return waiters

    def close(self) -> None:
        """Release the epoll fd."""
        self._epoll.close()

    def reinit(self, waker_fd: int) -> None:
        """After fork: a new epoll (the old one is shared with the parent)."""
        # Closing our copy of the parent's epoll fd leaves the parent's intact;
        # epoll_ctl on it would not.
        self._epoll.close()
        self._epoll = _new_epoll()
        self._waker_fd = waker_fd
        self._epoll.register(waker_fd, READ)
        for fd, entry in list(self._fds.items()):
            entry[2] = 0
            want = (READ if entry[0] is not None else 0) | (WRITE if entry[1] is not None else 0)
            if want:
                self._set_mask(fd, entry, want)
            else:
                del self._fds[fd]

    def _rebuild(self) -> list[Any]:
        """Start a new epoll set holding only the live waits.

        Returns:
            The waiters whose fd could not be registered again (it was closed
            without ``notify_closing``); woken, they meet the error themselves.
        """
        self._epoll.close()
        self._epoll = _new_epoll()
        self._epoll.register(self._waker_fd, READ)
        lost = []
        for fd, entry in list(self._fds.items()):
            entry[2] = 0
            want = (READ if entry[0] is not None else 0) | (WRITE if entry[1] is not None else 0)
            try:
                self._set_mask(fd, entry, want)
            except OSError:
                del self._fds[fd]
                waiters = [w for w in entry[:2] if w is not None]
                self.waiting -= len(waiters)
                lost += waiters
        return lost

    def _set_mask(self, fd: int, entry: list[Any], mask: int) -> None:
        if mask == 0:
            del self._fds[fd]
            self._forget(fd)
            return
        ep = self._epoll
        try:
            if entry[2]:
                ep.modify(fd, mask)
            else:
                ep.register(fd, mask)
        except FileNotFoundError:
            # The kernel dropped it when the fd was closed; the number is reused.
            ep.register(fd, mask)
        except FileExistsError:
            # Registered under an earlier owner of this fd number.
            ep.modify(fd, mask)
        entry[2] = mask

    def _forget(self, fd: int) -> bool:
        try:
            self._epoll.unregister(fd)
        except OSError:
            return False
        return True
