"""The wake-up fd: how other threads (and signal handlers) get a hub out of its poll.

An eventfd where the kernel has one, else a non-blocking pipe.  Closing sets
both numbers to -1 first, so a late ``wake()`` from another thread fails
with EBADF instead of writing into whatever file reuses the numbers.
"""

from __future__ import annotations

import os

from . import _originals

__all__ = ["Waker"]


class Waker:
    """A wake-up fd other threads write to so the hub leaves its poll."""

    # Held by the class: a hub released at interpreter exit closes its waker
    # after this module's globals may have been cleared (the compiled hub
    # module outlives the pure-Python ones).
    _os_close = staticmethod(_originals.os_close)

    def __init__(self) -> None:
        if _originals.eventfd is not None:
            fd = _originals.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.read_fd = self.write_fd = fd
        else:
            self.read_fd, self.write_fd = _originals.os_pipe()
            os.set_blocking(self.read_fd, False)
            os.set_blocking(self.write_fd, False)

    def wake(self) -> None:
        try:
            _originals.os_write(self.write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except (BlockingIOError, OSError):
            pass  # already readable (pipe full) or closing: the hub will look anyway

    def drain(self) -> None:
        try:
            _originals.os_read(self.read_fd, 4096)
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        fds = {self.read_fd, self.write_fd}
        # A late wake() from another thread must fail with EBADF, never
        # write into whatever file reuses these numbers.
        self.read_fd = self.write_fd = -1
        for fd in fds:
            try:
                self._os_close(fd)
            except OSError:
                pass
