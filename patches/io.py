"""Cooperative twin of :mod:`io`: ``open`` on a pipe, FIFO or socket gives a file that blocks only its task.

Facts this module relies on:

- ``open`` builds a ``FileIO``, then a buffered layer, then a text layer.
  The builtin ``open`` is ``io.open``, and ``os.fdopen`` calls ``io.open``
  at call time, so replacing both names covers the three ways in.
- The C read of a ``FileIO`` over a pipe, FIFO or socket waits in the kernel
  and with it the whole OS thread, every task included.  A regular file or a
  block device never keeps a read waiting on another process: those files
  stay exactly the stdlib's.
- ``detach()`` takes a layer apart without closing what is under it.  So
  the stdlib opens the file (its mode checks, errors and buffering choices
  stay its own), and the layers are then rebuilt, with the same settings,
  over ``PipeIO``, which waits on the hub before each read or write.
- Opening a FIFO by its path waits in the kernel until the other end is
  opened as well; that ``open`` call runs in the hub's thread pool.
- The fd keeps its blocking mode: the open file may be shared with another
  process (a FIFO, a pipe inherited across ``fork``, stdin), which would see
  ``O_NONBLOCK`` too.  Once the hub calls a pipe readable a read returns at
  once, and once it calls it writable a write of ``PIPE_BUF`` bytes does.
  An fd the program made non-blocking itself stays the stdlib's: it is
  expected to raise or return ``None``, not to wait.
- ``sys.stdin`` is made before anything can be patched.  When it is a pipe,
  FIFO or socket it is rebuilt over fd 0 with the interpreter's settings
  (``newline="\\n"``: no translation), on a raw file that does not own the fd,
  so that unpatching puts the original back intact.  A terminal is left
  alone: ``input()`` reads it through readline, which no file object changes.
"""

from __future__ import annotations

import io
import os as _os
import select as _select
import stat
import sys
import weakref
from typing import Any

from corun._fdmodes import blocking_for_its_owner, set_blocking_for_its_owner
from corun.hub import notify_closing, wait_readable, wait_writable

from .os import _ready_now

__target__ = "io"
__implements__ = ["open"]
__all__ = ["PipeIO", "cooperative", "open", "pipe_on"]

_original_open = io.open
_PIPE_BUF = getattr(_select, "PIPE_BUF", 512)
_READ_CHUNK = 64 * 1024

# The cooperative raw files by fd, to find a pipe handed to a child process.
_pipes: weakref.WeakValueDictionary[int, PipeIO] = weakref.WeakValueDictionary()


def pipe_on(fd: int) -> PipeIO | None:
    """The open ``PipeIO`` over ``fd``, if there is one."""
    pipe = _pipes.get(fd)
    return None if pipe is None or pipe.closed else pipe


class PipeIO(io.RawIOBase):
    """A raw file over a pipe, FIFO or socket, read and written cooperatively.

    It wraps the stdlib's ``FileIO``, which keeps owning the fd.  With
    ``nonblocking`` the fd is made non-blocking (only its owner sees it: the
    parent's end of a pipe to a child); otherwise it keeps its mode and is
    read or written only once the hub says it is ready.
    """

    def __init__(self, file: io.FileIO, *, nonblocking: bool) -> None:
        super().__init__()
        self._file = file
        self._fd = file.fileno()
        if nonblocking:
            _os.set_blocking(self._fd, False)
            # Whoever reads or writes the fd directly (os.read on fileno()) expects it to block.
            set_blocking_for_its_owner(self._fd, True)
        self._nonblocking = nonblocking
        _pipes[self._fd] = self

    # -- what a raw file reports --

    @property
    def name(self) -> Any:
        return self._file.name

    @property
    def mode(self) -> str:
        return self._file.mode

    @property
    def closed(self) -> bool:
        return self._file.closed

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()

    def readable(self) -> bool:
        return self._file.readable()

    def writable(self) -> bool:
        return self._file.writable()

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            super().close()
        finally:
            if _pipes.get(self._fd) is self:
                del _pipes[self._fd]
            if self._nonblocking:
                set_blocking_for_its_owner(self._fd, False)
            notify_closing(self._fd)
            self._file.close()

    # -- I/O --

    def readinto(self, buffer: Any) -> int:
        file = self._file
        while True:
            if not self._nonblocking:
                self._wait_until_ready(_select.POLLIN)
            n = file.readinto(buffer)
            if n is not None:
                return n
            # Non-blocking, and empty (or emptied by another reader since it polled ready).
            wait_readable(self._fd)

    def readall(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            if not self._nonblocking:
                self._wait_until_ready(_select.POLLIN)
            data = self._file.read(_READ_CHUNK)
            if data is None:
                wait_readable(self._fd)
                continue
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def write(self, data: Any) -> int:
        # All of it, as a write to a blocking pipe does: the stdlib's unbuffered
        # stdin (bufsize=0) relies on that.
        file = self._file
        with memoryview(data) as view, view.cast("B") as flat:
            total = 0
            while total < len(flat):
                if self._nonblocking:
                    n = file.write(flat[total:])
                else:
                    self._wait_until_ready(_select.POLLOUT)
                    n = file.write(flat[total : total + _PIPE_BUF])
                if n is None:
                    wait_writable(self._fd)
                    continue
                total += n
            return total

    def _wait_until_ready(self, event: int) -> None:
        # A look first: a hub round trip for every read of a busy pipe would cost more.
        if not _ready_now(self._fd, event):
            (wait_readable if event == _select.POLLIN else wait_writable)(self._fd)

    # -- who else may use the fd --

    def hand_to_child(self) -> None:
        """Another child gets this pipe as its stdin/stdout/stderr: make it blocking for it."""
        if self._nonblocking:
            _os.set_blocking(self._fd, True)
            set_blocking_for_its_owner(self._fd, False)
            self._nonblocking = False

    def keep_to_itself(self) -> None:
        """Only this process uses the fd (the parent's end of a pipe to a child): make it non-blocking."""
        if not self._nonblocking:
            _os.set_blocking(self._fd, False)
            set_blocking_for_its_owner(self._fd, True)
            self._nonblocking = True


def _pipe_under(f: Any) -> PipeIO | None:
    """The ``PipeIO`` under the layers of ``f``, if it already sits on one."""
    layer = getattr(f, "buffer", f)
    layer = getattr(layer, "raw", layer)
    return layer if isinstance(layer, PipeIO) else None


def cooperative(f: Any, buffering: Any, *, nonblocking: bool, newline: str | None = None) -> Any:
    """The same file object as ``f`` (text or binary, buffered or not) over a ``PipeIO``.

    ``f`` is taken apart (``detach``); ``buffering`` and ``newline`` are the
    arguments it was opened with, which its layers do not report.  A file
    already over a ``PipeIO`` (``open`` here made it) is kept, in the mode asked for.
    """
    pipe = _pipe_under(f)
    if pipe is not None:
        if nonblocking:
            pipe.keep_to_itself()
        return f
    if isinstance(f, io.TextIOWrapper):
        encoding, errors = f.encoding, f.errors
        line_buffering, write_through = f.line_buffering, f.write_through
        mode = getattr(f, "mode", None)
        text = io.TextIOWrapper(
            cooperative(f.detach(), buffering, nonblocking=nonblocking),
            encoding=encoding,
            errors=errors,
            newline=newline,
            line_buffering=line_buffering,
            write_through=write_through,
        )
        if mode is not None:
            text.mode = mode  # type: ignore[misc]  # as io.open sets it
        return text
    if isinstance(f, (io.BufferedReader, io.BufferedWriter)):
        raw = f.detach()
        # As io.open sizes the buffer: buffering, or the fd's block size for -1 (and 1 in binary mode).
        size = buffering if isinstance(buffering, int) and buffering > 1 else getattr(raw, "_blksize", 0)
        return type(f)(PipeIO(raw, nonblocking=nonblocking), size if size > 1 else io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]
    if isinstance(f, io.FileIO):
        return PipeIO(f, nonblocking=nonblocking)
    return f


def open(
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Any = None,
) -> Any:
    """``open``, whose file over a pipe, FIFO or socket waits in its own task only."""
    args = (file, mode, buffering, encoding, errors, newline, closefd, opener)
    # Opening a FIFO waits in the kernel until its other end is opened too.
    f: Any
    if _names_a_fifo(file, opener):
        from corun.threadpool import get_threadpool  # only then: patching alone needs no thread pool

        f = get_threadpool().apply(_original_open, args)
    else:
        f = _original_open(*args)
    raw = _raw(f)
    if raw is None or not _waits_for_others(raw.fileno()):
        return f
    return cooperative(f, buffering, nonblocking=False, newline=newline)


def _names_a_fifo(file: Any, opener: Any) -> bool:
    if opener is not None or not isinstance(file, (str, bytes, _os.PathLike)):
        return False
    try:
        return stat.S_ISFIFO(_os.stat(file).st_mode)
    except (OSError, ValueError):
        return False


def _raw(f: Any) -> io.FileIO | None:
    """The ``FileIO`` under ``f`` when its layers are the ones ``open`` makes and can remake."""
    layer = f.buffer if type(f) is io.TextIOWrapper else f
    if type(layer) in (io.BufferedReader, io.BufferedWriter):
        layer = layer.raw
    return layer if type(layer) is io.FileIO else None


def _waits_for_others(fd: int) -> bool:
    """Whether a read or write of ``fd`` may wait on another process, and should wait."""
    try:
        kind = _os.fstat(fd).st_mode
    except OSError:
        return False
    if not (stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind)):
        return False
    return _os.get_blocking(fd) or blocking_for_its_owner(fd)


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The builtin ``open``, and ``sys.stdin`` over a pipe, FIFO or socket (for ``monkey`` to set)."""
    changes: list[tuple[str, str, Any]] = [("builtins", "open", open)]
    stdin: Any = sys.stdin
    interpreters: Any = sys.__stdin__
    if stdin is not None and stdin is interpreters and _raw(stdin) is not None:
        try:
            fd = stdin.fileno()
        except (OSError, ValueError):
            return changes
        if fd == 0 and _waits_for_others(fd):
            file = io.FileIO(fd, "rb", closefd=False)
            file.name = stdin.name  # "<stdin>", as the interpreter names it
            raw = PipeIO(file, nonblocking=False)
            rebuilt: Any = io.TextIOWrapper(
                io.BufferedReader(raw),
                encoding=stdin.encoding,
                errors=stdin.errors,
                newline="\n",
                line_buffering=stdin.line_buffering,
                write_through=stdin.write_through,
            )
            rebuilt.mode = stdin.mode
            changes.append(("sys", "stdin", rebuilt))
    return changes
