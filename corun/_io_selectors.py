"""The portable readiness back end, on the stdlib ``selectors`` module.

Used where epoll does not exist.  Same interface and rules as ``EpollIO``:
registrations are kept while an fd is in use, an fd reported ready with no
waiter is unregistered, and ``close_fd`` unregisters before the fd is closed.
"""

from __future__ import annotations

import selectors
from typing import Any

from . import _originals

__all__ = ["SelectorsIO"]

READ = 0x001
WRITE = 0x004
_SEL = {READ: selectors.EVENT_READ, WRITE: selectors.EVENT_WRITE}


class SelectorsIO:
    """Readiness waits on file descriptors, one reader and one writer per fd."""

    def __init__(self, waker_fd: int) -> None:
        self._sel = _originals.DefaultSelector()
        # fd -> [reader waiter, writer waiter, registered selector mask, owner notifies closes]
        self._fds: dict[int, list[Any]] = {}
        self.waiting = 0
        self._waker_fd = waker_fd
        self._sel.register(waker_fd, selectors.EVENT_READ)

    def waiter_for(self, fd: int, event: int) -> Any:
        """The waiter already waiting on (fd, event), or None."""
        entry = self._fds.get(fd)
        return None if entry is None else entry[0 if event == READ else 1]

    def add(self, fd: int, event: int, waiter: Any, notifies_close: bool = False) -> None:
        """Wake ``waiter`` when ``fd`` is ready for ``event`` (see ``EpollIO.add``)."""
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._fds[fd] = [None, None, 0, False]
        if entry[2] and entry[0] is None and entry[1] is None and not (notifies_close and entry[3]):
            # Kept while nobody waited, so maybe stale: the fd may have been
            # closed (kqueue and epoll then drop it) and its number reused.
            self._forget(fd)
            entry[2] = 0
        want = entry[2] | _SEL[event]
        if want != entry[2]:
            try:
                self._set_mask(fd, entry, want)
            except BaseException:
                if entry[0] is None and entry[1] is None and not entry[2]:
                    del self._fds[fd]
                raise
        entry[3] = notifies_close
        entry[0 if event == READ else 1] = waiter
        self.waiting += 1

    def remove(self, fd: int, event: int, waiter: Any) -> None:
        """Forget ``waiter``; the registration stays until the fd is idle."""
        entry = self._fds.get(fd)
        slot = 0 if event == READ else 1
        if entry is not None and entry[slot] is waiter:
            entry[slot] = None
            self.waiting -= 1

    def poll(self, timeout: float) -> tuple[list[Any], bool]:
        """Wait up to ``timeout`` (-1: forever); return (waiters to wake, waker fired)."""
        woken: list[Any] = []
        waker = False
        for key, ev in self._sel.select(None if timeout < 0 else timeout):
            fd = key.fd
            if fd == self._waker_fd:
                waker = True
                continue
            entry = self._fds.get(fd)
            if entry is None:
                continue
            served = False
            if entry[0] is not None and ev & selectors.EVENT_READ:
                woken.append(entry[0])
                entry[0] = None
                self.waiting -= 1
                served = True
            if entry[1] is not None and ev & selectors.EVENT_WRITE:
                woken.append(entry[1])
                entry[1] = None
                self.waiting -= 1
                served = True
            if not served:
                want = (selectors.EVENT_READ if entry[0] is not None else 0) | (
                    selectors.EVENT_WRITE if entry[1] is not None else 0
                )
                try:
                    self._set_mask(fd, entry, want)
                except (OSError, ValueError):
                    self._fds.pop(fd, None)
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
        """Release the selector."""
        self._sel.close()

    def reinit(self, waker_fd: int) -> None:
        """After fork: a new selector with the same waits."""
        self._sel.close()
        self._sel = _originals.DefaultSelector()
        self._waker_fd = waker_fd
        self._sel.register(waker_fd, selectors.EVENT_READ)
        for fd, entry in list(self._fds.items()):
            entry[2] = 0
            want = (selectors.EVENT_READ if entry[0] is not None else 0) | (
                selectors.EVENT_WRITE if entry[1] is not None else 0
            )
            if want:
                self._set_mask(fd, entry, want)
            else:
                del self._fds[fd]

    def _set_mask(self, fd: int, entry: list[Any], mask: int) -> None:
        if mask == 0:
            del self._fds[fd]
            self._forget(fd)
            return
        if entry[2]:
            self._sel.modify(fd, mask)
        else:
            try:
                self._sel.register(fd, mask)
            except KeyError:
                self._sel.modify(fd, mask)
        entry[2] = mask

    def _forget(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass
