"""Cooperative twin of :mod:`os`: ``fork``, and child waits, reads and writes that block only their task.

Facts this module relies on:

- ``waitpid(pid, WNOHANG)`` (and ``wait3``/``wait4``/``waitid`` with it)
  never blocks and checks its arguments exactly as the blocking call does.
  So a cooperative wait is a series of such looks, with the task parked in
  between until something says "look again"; a call that asks for
  ``WNOHANG`` itself goes straight to the original.
- A pidfd (``os.pidfd_open``, Linux 5.3+) becomes readable when its process
  exits, and stays readable: a wait for one specific child is then an
  ordinary readiness wait on the hub.  A pid is not reused while its process
  is an unreaped child, so a pidfd opened *before* a look that still finds
  the child is known to be that child's.
- A pidfd tells about exit only, and a wait for *any* child (pid -1, 0, or a
  process group) has no fd at all.  Those waits, and kernels or sandboxes
  without pidfds, rely on SIGCHLD, which the kernel sends the parent whenever
  a child exits, stops or continues: while such a wait is in progress corun
  listens for SIGCHLD (through ``corun._signals``, so the program's own
  handler still runs and ``signal.getsignal`` still reports it), and each
  SIGCHLD wakes every such wait to look again.  A Python-level handler can
  only be installed from the main thread, SIGCHLD can be ignored (SIG_IGN)
  or taken by a handler installed behind corun's back, and signals of the
  same kind coalesce; so the looks are also repeated on a bounded back-off.
  A missed signal delays a wait a little; it can never hang it.
- The C ``system()`` (glibc, musl) starts ``/bin/sh -c command`` with
  ``posix_spawn``, the shell getting the caller's signal mask and SIGINT and
  SIGQUIT back at their defaults; ignores SIGINT and SIGQUIT in the parent
  until the shell has been reaped; retries its wait on ``EINTR``, so no
  signal handler can cut it short; and returns the wait status (-1 if the
  shell was reaped elsewhere, ``127 << 8`` if it could not be started).
  ``system`` here does the same with the task parked while the shell runs;
  ``corun._signals`` says what becomes of the signals.
- ``fork`` copies the hub and every task with it.  The hub's own at-fork
  hook gives the child new fds; ``fork`` here then makes the child forget
  the parent's other tasks, so none of them runs a second time: their
  waits are disarmed, the hub's ready callbacks, timers and fd waits are
  dropped, and their greenlets are kept (never resumed), because a greenlet
  that is garbage-collected is unwound and would run its ``finally`` blocks
  in the child.
- A read or write of a blocking fd cannot be made non-blocking for one call
  without changing ``O_NONBLOCK``, which belongs to the open file and so to
  every process sharing it.  But once ``poll`` calls an fd readable, a read
  returns at once; once it calls a pipe writable, a write of up to
  ``PIPE_BUF`` bytes does (and is atomic), as on a stream socket, where a
  longer write may be cut in pieces without changing what the reader gets.
  ``poll`` never calls a regular file unready, nor an fd open only the
  other way ready: those calls go straight to the original.
"""

from __future__ import annotations

import _socket as _csocket
import errno
import gc
import os as _os
import select as _select
import signal as _stdsignal
import stat
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from greenlet import getcurrent
from greenlet import greenlet as RawGreenlet

from corun import _originals, _signals
from corun._fdmodes import blocking_for_its_owner
from corun._waiter import Waiter
from corun.hub import Hub, LoopExit, _peek_hub, get_hub

try:
    import fcntl as _fcntl
except ImportError:  # not a POSIX system: os.read and os.write stay the originals' own
    _fcntl = None  # type: ignore[assignment]

__target__ = "os"
__implements__ = ["fork", "forkpty", "read", "system", "wait", "wait3", "wait4", "waitid", "waitpid", "write"]
__all__ = ["ChildExit", *__implements__]

T = TypeVar("T")

_original_fork = _os.fork
_original_read = _os.read
_original_write = _os.write
_original_forkpty: Any = getattr(_os, "forkpty", None)
_original_waitpid = _os.waitpid
_original_wait3: Any = getattr(_os, "wait3", None)
_original_wait4: Any = getattr(_os, "wait4", None)
_original_waitid: Any = getattr(_os, "waitid", None)
_pidfd_open: Any = getattr(_os, "pidfd_open", None)
_original_system = _os.system
_posix_spawn: Any = getattr(_os, "posix_spawn", None)
# The C system()'s shell (_PATH_BSHELL) and its argv[0].
_SHELL = "/bin/sh"

WNOHANG = getattr(_os, "WNOHANG", 1)
# Events a pidfd does not report.
_NOT_EXIT = getattr(_os, "WUNTRACED", 0) | getattr(_os, "WCONTINUED", 0)
_WAITID_EVENTS = getattr(_os, "WEXITED", 0) | getattr(_os, "WSTOPPED", 0) | getattr(_os, "WCONTINUED", 0)
_SIGCHLD: int | None = getattr(_stdsignal, "SIGCHLD", None)

# Back-off between looks: from _FIRST_LOOK, doubling, up to one of the caps.
_FIRST_LOOK = 0.001
_CAP_POLLING = 0.05  # nothing else will say when to look
_CAP_HEARING = 0.5  # SIGCHLD will; this only bounds the cost of a missed one


# -- waiting for a child to change state ---------------------------------------


class _ChildWatcher:
    """The waits that rely on SIGCHLD; each SIGCHLD wakes all of them to look again."""

    def __init__(self) -> None:
        # Bumped by every SIGCHLD: a wait that saw it change since its last
        # look does not park, so a signal between look and park is not lost.
        self.generation = 0
        self._waits: dict[Waiter, Hub] = {}
        # The ChildExit objects relying on SIGCHLD.  No lock (one could be
        # held by the very code a signal handler interrupted): set operations
        # are atomic, and a race between threads entering and leaving can only
        # leave a wait not hearing SIGCHLD, which it notices (``hearing``) and
        # makes up for by looking more often.
        self._members: set[int] = set()
        self._listening = False

    def enter(self, member: object) -> None:
        self._members.add(id(member))
        if not self._listening and _SIGCHLD is not None:
            self._listening = _signals.listen(_SIGCHLD, self._on_signal)

    def exit(self, member: object) -> None:
        self._members.discard(id(member))
        if not self._members and self._listening and _SIGCHLD is not None:
            self._listening = False
            _signals.unlisten(_SIGCHLD, self._on_signal)

    def hearing(self) -> bool:
        return self._listening and _SIGCHLD is not None and _signals.hears(_SIGCHLD)

    def wait(self, seen: int, timeout: float) -> None:
        """Park until a SIGCHLD arrives (or arrived since ``generation`` was ``seen``), or ``timeout``."""
        hub = get_hub()
        w = Waiter(hub, "a child process to exit")
        self._waits[w] = hub
        try:
            if self.generation == seen:
                w.get(timeout)
        finally:
            del self._waits[w]

    def _on_signal(self) -> None:
        # Called from the signal handler: it may only schedule.
        self.generation += 1
        for w, hub in list(self._waits.items()):
            hub.wake_threadsafe(w)

    def after_fork(self) -> None:
        """In a child: the waits of the parent's tasks are gone."""
        self._waits.clear()
        self._members.clear()
        if self._listening and _SIGCHLD is not None:
            self._listening = False
            _signals.unlisten(_SIGCHLD, self._on_signal)


_watcher = _ChildWatcher()

# Whether pidfd_open works here: not on kernels before 5.3, nor in some sandboxes.
_pidfd_works = _pidfd_open is not None


def _open_pidfd(pid: int) -> int:
    """A pidfd for ``pid``, or -1 where that is not possible."""
    global _pidfd_works
    if not _pidfd_works:
        return -1
    try:
        return cast(int, _pidfd_open(pid))
    except ProcessLookupError:
        return -1  # gone already: the next look says what became of it
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):  # never going to work here
            _pidfd_works = False
        return -1  # EMFILE and the like: fall back for this wait only


class ChildExit:
    """Parks a task until a child may have changed state: "look again with WNOHANG".

    Opened before the look that decides to wait (see the facts above).  A
    pidfd where it can be used, otherwise SIGCHLD and a bounded back-off.

    Args:
        pid: the ``pid`` argument of ``waitpid`` (> 0: one child).
        options: the ``waitpid`` options; stops and continues need SIGCHLD.
        pidfd: an existing pidfd to wait on (not closed here).
    """

    def __init__(self, pid: int, options: int = 0, pidfd: int = -1) -> None:
        self._hub = get_hub()
        self._own_fd = pidfd < 0
        if pidfd < 0 and pid > 0 and not options & _NOT_EXIT:
            pidfd = _open_pidfd(pid)
        self._pidfd = pidfd
        self._delay = _FIRST_LOOK
        self._seen = 0
        if pidfd < 0:
            _watcher.enter(self)
            self._seen = _watcher.generation

    def __enter__(self) -> ChildExit:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def wait(self, timeout: float | None = None) -> None:
        """Park until the child may have changed state, or ``timeout`` passed (no error)."""
        if self._pidfd >= 0:
            try:
                self._hub.wait_readable(self._pidfd, timeout)
            except TimeoutError:
                pass
            return
        cap = _CAP_HEARING if _watcher.hearing() else _CAP_POLLING
        step = self._delay if timeout is None else min(self._delay, timeout)
        self._delay = min(self._delay * 2, cap)
        try:
            _watcher.wait(self._seen, max(step, 0.0))
        finally:
            self._seen = _watcher.generation

    def close(self) -> None:
        """Release the pidfd or the SIGCHLD watch (idempotent)."""
        fd, self._pidfd = self._pidfd, -2
        if fd == -2:
            return
        if fd < 0:
            _watcher.exit(self)
        elif self._own_fd:
            self._hub.notify_closing(fd)
            _originals.os_close(fd)


def _wait_cooperatively(look: Callable[[], T], done: Callable[[T], bool], pid: int, options: int) -> T:
    """Repeat the non-blocking ``look`` until ``done`` says it found something, parking in between."""
    result = look()
    if done(result):
        return result
    with ChildExit(pid, options) as exit_:
        while True:
            result = look()
            if done(result):
                return result
            exit_.wait()


def _found(result: tuple[Any, ...]) -> bool:
    return result[0] != 0


def waitpid(pid: int, options: int, /) -> tuple[int, int]:
    """``os.waitpid`` that blocks only the calling task (without ``WNOHANG``).

    Raises:
        ChildProcessError: no such child, as the original.
    """
    if not isinstance(options, int) or options & WNOHANG:
        return _original_waitpid(pid, options)
    return _wait_cooperatively(lambda: _original_waitpid(pid, options | WNOHANG), _found, pid, options)


def wait() -> tuple[int, int]:
    """``os.wait`` that blocks only the calling task.

    Raises:
        ChildProcessError: no child to wait for, as the original.
    """
    return _wait_cooperatively(lambda: _original_waitpid(-1, WNOHANG), _found, -1, 0)


def wait3(options: int) -> tuple[int, int, Any]:
    """``os.wait3`` that blocks only the calling task (without ``WNOHANG``)."""
    if not isinstance(options, int) or options & WNOHANG:
        return cast(tuple[int, int, Any], _original_wait3(options))
    return _wait_cooperatively(lambda: _original_wait3(options | WNOHANG), _found, -1, options)


def wait4(pid: int, options: int) -> tuple[int, int, Any]:
    """``os.wait4`` that blocks only the calling task (without ``WNOHANG``)."""
    if not isinstance(options, int) or options & WNOHANG:
        return cast(tuple[int, int, Any], _original_wait4(pid, options))
    return _wait_cooperatively(lambda: _original_wait4(pid, options | WNOHANG), _found, pid, options)


def waitid(idtype: int, ident: int, options: int, /) -> Any:
    """``os.waitid`` that blocks only the calling task (without ``WNOHANG``)."""
    if not isinstance(options, int) or options & WNOHANG or not options & _WAITID_EVENTS:
        # Also when no event is asked for: the original reports that error.
        return _original_waitid(idtype, ident, options)

    def look() -> Any:
        return _original_waitid(idtype, ident, options | WNOHANG)

    result = look()
    if result is not None:
        return result
    p_pid = getattr(_os, "P_PID", None)
    p_pidfd = getattr(_os, "P_PIDFD", None)
    exit_only = options & _WAITID_EVENTS == getattr(_os, "WEXITED", 0)
    if p_pidfd is not None and idtype == p_pidfd and exit_only:
        waiting = ChildExit(0, 0, pidfd=ident)
    else:
        pid = ident if idtype == p_pid and exit_only else -1
        waiting = ChildExit(pid, 0 if exit_only else _NOT_EXIT)
    with waiting:
        while True:
            result = look()
            if result is not None:
                return result
            waiting.wait()


# -- system ----------------------------------------------------------------------


def system(command: Any) -> int:
    """``os.system`` that parks only the calling task while the shell runs.

    What the C ``system()`` does (see the facts above): ``/bin/sh -c
    command``, SIGINT and SIGQUIT ignored here meanwhile, and the wait
    status returned (``os.waitstatus_to_exitcode`` decodes it).  As that
    wait cannot be cut short, an exception thrown into the task meanwhile (a
    signal handler's, a kill, a ``Timeout``) is raised once the shell has
    been reaped.  Outside the main thread, where no signal handler can be
    set, it is the original, blocking that thread only.

    Raises:
        TypeError, ValueError: ``command`` is not a str, bytes or path, or
            holds a NUL byte, as with the original.
    """
    if _posix_spawn is None or not _signals.can_set_handlers():
        return _original_system(command)
    line = _os.fsencode(command)
    if b"\0" in line:
        raise ValueError("embedded null byte")
    sys.audit("os.system", line)
    reset = _signals.shell_started()
    try:
        try:
            pid = _posix_spawn(_SHELL, [b"sh", b"-c", line], _spawn_environment(), setsigdef=reset)
        except OSError:
            return 127 << 8  # as if the shell had run and exited with 127 (POSIX)
        return _reap_shell(pid)
    finally:
        _signals.shell_ended()


def _reap_shell(pid: int) -> int:
    """Park until the shell ``pid`` has ended; its wait status, or -1 if it was reaped elsewhere.

    Raises:
        The first exception thrown into the task while it waited, once the shell has ended.
    """
    thrown: BaseException | None = None
    with ChildExit(pid) as exit_:
        while True:
            try:
                found, status = _original_waitpid(pid, WNOHANG)
            except ChildProcessError:
                status, found = -1, pid
            if found:
                break
            try:
                exit_.wait()
            except BaseException as exc:  # held until the shell ends, then raised
                if thrown is None:
                    thrown = exc
    if thrown is not None:
        raise thrown
    return status


def _spawn_environment() -> Any:
    """The environment for ``posix_spawn``: the process's own (None) from 3.13, before that ``os.environ``.

    Before 3.13 ``posix_spawn`` needs a mapping, and ``os.environ`` is what
    ``subprocess`` passes then too.
    """
    return None if sys.version_info >= (3, 13) else _os.environ


# -- fork ------------------------------------------------------------------------

# The parent's tasks, in a child: kept so that they are never collected (and unwound).
_abandoned: list[Any] = []


def fork() -> int:
    """``os.fork`` after which only the forking task goes on in the child.

    In the child, the other tasks of the parent never run.  A child forked
    from a spawned task (not the main task) ends, like a process whose last
    thread ended, once that task and the tasks it started there are done:
    with status 0, or 1 if the forking task failed; ``SystemExit`` in that
    task ends it with its code.

    Raises:
        OSError: the fork failed, as the original.
    """
    pid = _original_fork()
    if pid == 0:
        _forget_parent_tasks()
    return pid


def read(fd: int, length: int, /) -> bytes:
    """``os.read`` that parks the task while an fd its owner expects to block has no data.

    That is a blocking pipe, FIFO, socket or terminal, or a socket corun
    made non-blocking behind a timeout of None (see ``corun._fdmodes``):
    ``BlockingIOError`` from it is waited out, not raised.  A regular file
    always polls readable and is read at once; an fd the program made
    non-blocking is read at once too, and still raises ``BlockingIOError``.
    """
    if not isinstance(fd, int):
        return _original_read(fd, length)  # the original says what is wrong with it
    if not _ready_now(fd, _select.POLLIN) and _waits_to_read(fd):
        get_hub().wait_readable(fd)
    while True:
        try:
            return _original_read(fd, length)
        except BlockingIOError:
            if not blocking_for_its_owner(fd):
                raise
        get_hub().wait_readable(fd)


def write(fd: int, data: Any, /) -> int:
    """``os.write`` that parks the task while an fd its owner expects to block has no room.

    A blocking fd waits for room first; on a pipe, FIFO or stream socket,
    data beyond ``PIPE_BUF`` bytes goes a piece of ``PIPE_BUF`` at a time,
    each after waiting for room, so that no call blocks the thread (each
    piece is as atomic as the whole write would have been: not beyond
    ``PIPE_BUF``).  A socket corun made non-blocking behind a timeout of
    None (see ``corun._fdmodes``) is written in full, waiting out
    ``BlockingIOError``.  Either way it returns once everything is written,
    as a blocking write does.  A regular file is written at once, and an fd
    the program made non-blocking still raises ``BlockingIOError``.
    """
    flags = _status_flags(fd) if isinstance(fd, int) else None
    if flags is None or flags & _os.O_ACCMODE == _os.O_RDONLY:
        return _original_write(fd, data)  # it fails at once, as it should
    try:
        view = memoryview(data)
    except TypeError:
        return _original_write(fd, data)  # the original says what is wrong with it
    with view:
        if not flags & _os.O_NONBLOCK:
            return _write_blocking(fd, data, view)
        if blocking_for_its_owner(fd):
            return _write_all(fd, view)
        return _original_write(fd, data)


# A write of at most this many bytes to a pipe is atomic, and once the pipe
# polls writable, one of that size does not block.
_PIPE_BUF = getattr(_select, "PIPE_BUF", 512)


def _write_blocking(fd: int, data: Any, view: memoryview) -> int:
    """Write ``data`` (seen through ``view``) to the blocking ``fd``, waiting for room between pieces."""
    hub = get_hub()
    if not _ready_now(fd, _select.POLLOUT):
        hub.wait_writable(fd)
    size = view.nbytes
    if size <= _PIPE_BUF or not view.contiguous or not _takes_pieces(fd):
        return _original_write(fd, data)
    with view.cast("B") as octets:
        written = 0
        while True:
            try:
                written += _original_write(fd, octets[written : written + _PIPE_BUF])
            except OSError:
                if written:
                    return written  # as a blocking write that failed part way
                raise
            if written >= size:
                return written
            if not _ready_now(fd, _select.POLLOUT):
                hub.wait_writable(fd)


def _write_all(fd: int, view: memoryview) -> int:
    """Write all of ``view`` to ``fd`` (non-blocking by corun's doing), waiting out ``BlockingIOError``."""
    with view.cast("B") as octets:
        size = len(octets)
        written = 0
        while True:
            try:
                written += _original_write(fd, octets[written:])
            except BlockingIOError:
                get_hub().wait_writable(fd)
                continue
            except OSError:
                if written:
                    return written
                raise
            if written >= size:
                return written


def _takes_pieces(fd: int) -> bool:
    """Whether ``fd`` is a pipe, FIFO or stream socket, where a write cut in pieces reads the same."""
    try:
        mode = _os.fstat(fd).st_mode
    except OSError:
        return False
    if stat.S_ISFIFO(mode):
        return True
    if not stat.S_ISSOCK(mode) or _csocket.getdefaulttimeout() is not None:
        # With a default timeout, looking at the socket would make it non-blocking.
        return False
    try:
        probe = _csocket.socket(fileno=fd)
    except OSError:
        return False
    try:
        return probe.type == _csocket.SOCK_STREAM
    finally:
        probe.detach()


def _status_flags(fd: int) -> int | None:
    """The file status flags of ``fd`` (``O_NONBLOCK``, the access mode), or None for a bad fd."""
    if _fcntl is None:
        return None  # no way to ask: call as the original would
    try:
        return _fcntl.fcntl(fd, _fcntl.F_GETFL)
    except (OSError, ValueError, OverflowError):
        return None


def _waits_to_read(fd: int) -> bool:
    """Whether a read of ``fd`` with no data yet should wait for some (not when it fails at once)."""
    flags = _status_flags(fd)
    if flags is None or flags & _os.O_ACCMODE == _os.O_WRONLY:
        return False
    return not flags & _os.O_NONBLOCK or blocking_for_its_owner(fd)


def _ready_now(fd: int, event: int) -> bool:
    """Whether ``fd`` is ready for ``event`` (POLLIN, POLLOUT) now (true for a bad fd: the call says so)."""
    if _originals.poll is None:
        return True  # no way to ask: call as the original would
    poller = _originals.poll()
    try:
        poller.register(fd, event)
    except (OSError, ValueError, OverflowError):
        return True
    return bool(poller.poll(0))


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The stdlib's early copies of ``os.read``/``os.write``, pointed at these (for ``monkey`` to set).

    ``multiprocessing.connection.Connection`` binds both, at import, as the
    default arguments of its ``_recv`` and ``_send``: a process patched
    after that (a ``forkserver`` server patched while it imports the main
    module) would otherwise read and write its connections blocking the thread.
    """
    module = "multiprocessing.connection"
    cls = getattr(sys.modules.get(module), "Connection", None)
    changes: list[tuple[str, str, Any]] = []
    for method, original, replacement in (("_recv", _original_read, read), ("_send", _original_write, write)):
        defaults = getattr(getattr(cls, method, None), "__defaults__", None)
        if defaults == (original,):
            changes.append((module, f"Connection.{method}.__defaults__", (replacement,)))
    return changes


def forkpty() -> tuple[int, int]:
    """``os.forkpty``, with the same care for the child as ``fork``."""
    pid, fd = _original_forkpty()
    if pid == 0:
        _forget_parent_tasks()
    return pid, fd


def _forget_parent_tasks() -> None:
    """In a fresh child: disarm every task of the hub but the current one."""
    _watcher.after_fork()
    hub = _peek_hub()
    if hub is None:
        return
    current = getcurrent()
    kept = _abandoned
    # Every wait of another task: wake-ups from the child's own tasks (a lock
    # released, an event set) must not resume them.  A wait queue skips such
    # waiters as cancelled ones.
    for obj in gc.get_objects():
        if isinstance(obj, Waiter) and obj.hub is hub:
            g = obj.greenlet
            if g is not None and g is not current:
                kept.append(g)
                obj.greenlet = None
    kept.extend(hub.drop_scheduled_work())
    if current is not hub.parent and current is not hub:
        # The parent's main task is disarmed too, but the hub throws into it
        # what ends a program: the end of all work (LoopExit), SystemExit and
        # KeyboardInterrupt from tasks.  In this child they end the process.
        ender = RawGreenlet(_end_child, parent=hub.parent)
        ender.switch(current)
        hub.parent = ender


def _end_child(task: Any) -> None:
    """Run in a greenlet standing in for the main task of a child forked from a spawned task."""
    try:
        task.switch()  # back to the forking task; resumed only to end the child
        status = 0
    except LoopExit as exc:
        if task.dead:
            successful = getattr(task, "successful", None)
            status = 0 if successful is None or successful() else 1
        else:
            print(f"LoopExit: {exc}", file=sys.stderr)
            status = 1
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException:
        import traceback  # only on this path: not imported by patching

        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: S110 - exiting anyway
            pass
    _os._exit(status)
