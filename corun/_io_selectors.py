"""The portable readiness back end, on the stdlib ``selectors`` module.

Used where epoll does not exist; the rules are those of ``_io_base``, shared
with ``EpollIO``.  ``selectors`` cannot re-assert a registration in place
(``modify`` with the same mask does nothing), so a possibly stale one is
unregistered and registered again.
"""

from __future__ import annotations

import selectors
from typing import Any

from . import _originals
from ._io_base import READ, WRITE, FdTable

__all__ = ["READ", "WRITE", "SelectorsIO"]


def _to_selectors(mask: int) -> int:
    return (selectors.EVENT_READ if mask & READ else 0) | (selectors.EVENT_WRITE if mask & WRITE else 0)


class SelectorsIO(FdTable):
    """Readiness waits on file descriptors through the platform's default selector."""

    name = "selectors"
    _sel: Any

    def _kernel_open(self, waker_fd: int) -> None:
        self._sel = _originals.DefaultSelector()
        self._sel.register(waker_fd, selectors.EVENT_READ)

    def _kernel_set(self, fd: int, old_mask: int, new_mask: int) -> None:
        sel = self._sel
        if old_mask:
            self._kernel_forget(fd)
        try:
            sel.register(fd, _to_selectors(new_mask))
        except KeyError:
            sel.modify(fd, _to_selectors(new_mask))
        except ValueError as exc:  # a closed or negative fd
            raise OSError(9, str(exc)) from None

    def _kernel_forget(self, fd: int) -> bool:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError, OSError):
            return False
        return True

    def _kernel_poll(self, timeout: float) -> list[tuple[int, int]]:
        ready = self._sel.select(None if timeout < 0 else timeout)
        return [
            (
                key.fd,
                (READ if ev & selectors.EVENT_READ else 0) | (WRITE if ev & selectors.EVENT_WRITE else 0),
            )
            for key, ev in ready
        ]

    def _unknown_fd_ready(self, fd: int) -> bool:
        # selectors reports only what it has in its own map.
        self._kernel_forget(fd)
        return True

    def close(self) -> None:
        """Release the selector."""
        self._sel.close()
