"""Which fds corun made non-blocking behind code that expects them to block.

O_NONBLOCK belongs to the open file, which every fd duplicated from it shares
(``os.dup``, ``socket.fromfd``, a forked child's copy), not to the fd.  The
cooperative socket keeps its fd non-blocking while its timeout is None, where
the stdlib's would block, and so do the cooperative pipes of ``subprocess``.
Code that reads or writes such an fd directly (``os.read(sock.fileno(), n)``)
counts on blocking calls, so the ``os`` and ``io`` twins ask here whether to
wait instead of letting ``BlockingIOError`` out.  This is kept apart from the
socket twin so that those twins need not import ``socket``.
"""

from __future__ import annotations

import os
import stat

__all__ = ["blocking_for_its_owner", "set_blocking_for_its_owner"]

# The fds corun made non-blocking behind blocking code.  Each maps to its
# file's (st_dev, st_ino) once that was needed, to recognise an fd
# duplicated from it.
_blocking_for_owner: dict[int, tuple[int, int] | None] = {}


def blocking_for_its_owner(fd: int) -> bool:
    """Whether ``fd`` is non-blocking only because corun made it so behind code expecting it to block.

    True for the fd of a cooperative socket with no timeout and for any fd
    sharing its open file (``os.dup`` of it, the fd ``fromfd`` duplicated):
    code reading or writing it directly expects the calls to block, as with
    the stdlib's socket.
    """
    if fd in _blocking_for_owner:
        return True
    if not _blocking_for_owner:
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        return False
    wanted = (st.st_dev, st.st_ino)
    for known_fd, known in list(_blocking_for_owner.items()):
        if known is None:
            try:
                known_st = os.fstat(known_fd)
            except OSError:
                continue
            known = (known_st.st_dev, known_st.st_ino)
            if known_fd in _blocking_for_owner:
                _blocking_for_owner[known_fd] = known
        if known == wanted:
            return True
    return False


def set_blocking_for_its_owner(fd: int, made_nonblocking: bool) -> None:
    """Record that corun made ``fd`` non-blocking behind code that expects it to block (or no longer).

    The cooperative socket calls it as its timeout changes and when it lets
    go of its fd; the subprocess pipes, so that ``os.read`` on their
    ``fileno()`` waits.
    """
    if made_nonblocking:
        _blocking_for_owner.setdefault(fd, None)
    else:
        _blocking_for_owner.pop(fd, None)
