"""The epoll readiness back end (Linux).

Facts about epoll this module relies on (the shared rules are in ``_io_base``):

- epoll registers the open file *description*, not the fd number.  An fd that
  is duplicated and then closed stays registered through the duplicate, but
  can no longer be removed by its number, and ``epoll_wait`` keeps reporting
  it: the loop spins.  So every close path unregisters first
  (``Hub.notify_closing``), and an fd reported ready with no waiter is
  unregistered at once.  When even that fails (the fd was closed after a
  ``dup`` without ``notify_closing``), only a new epoll set gets rid of it.
- A kept registration is re-asserted with one ``EPOLL_CTL_MOD``.
- ``EPOLLERR`` and ``EPOLLHUP`` are reported whatever the mask says; both wake
  the readers and the writers, who then meet the error in their own syscall.
- The kernel drops a registration silently when the last fd of its file is
  closed, so the table can be stale: ``EEXIST`` on ADD and ``ENOENT`` on
  MOD/DEL are expected and handled.
"""

from __future__ import annotations

from typing import Any

from . import _originals
from ._io_base import READ, WRITE, FdTable

__all__ = ["READ", "WRITE", "EpollIO"]


def _new_epoll() -> Any:
    if _originals.epoll is None:
        raise OSError("epoll is not available on this platform")
    return _originals.epoll()


class EpollIO(FdTable):
    """Readiness waits on file descriptors through one epoll set."""

    name = "epoll"
    _epoll: Any

    def _kernel_open(self, waker_fd: int) -> None:
        self._epoll = _new_epoll()
        self._epoll.register(waker_fd, READ)

    def _kernel_set(self, fd: int, old_mask: int, new_mask: int) -> None:
        ep = self._epoll
        try:
            if old_mask:
                ep.modify(fd, new_mask)
            else:
                ep.register(fd, new_mask)
        except FileNotFoundError:
            # The kernel dropped it when the fd was closed; the number is reused.
            ep.register(fd, new_mask)
        except FileExistsError:
            # Registered under an earlier owner of this fd number.
            ep.modify(fd, new_mask)

    def _kernel_forget(self, fd: int) -> bool:
        try:
            self._epoll.unregister(fd)
        except OSError:
            return False
        return True

    def _kernel_poll(self, timeout: float) -> list[tuple[int, int]]:
        return self._epoll.poll(timeout)

    def close(self) -> None:
        """Release the epoll fd."""
        self._epoll.close()
