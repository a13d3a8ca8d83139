"""The task dump: every live task of a hub with its state, what it waits on and its stack.

Facts this module relies on:

- The hub keeps no registry of tasks (it would cost every spawn); a dump is
  rare, so it finds the tasks, and the waiters that say what each waits on,
  with one scan of ``gc.get_objects()``, as ``LoopExit``'s description does.
- A dump on a signal must come even while a task blocks the hub in C code.
  CPython runs Python signal handlers only between two bytecodes of the
  main thread, which may be never; but its C-level handler writes the
  signal's number to the fd given to ``signal.set_wakeup_fd`` at once.  So
  a real OS thread reads that fd and writes the dump of every hub to fd 2
  with ``os.write``, as ``faulthandler`` does, never through ``sys.stderr``
  (whose lock the blocked thread may hold).  The Python-level handler that
  makes CPython write to the fd is a listener of corun's signal plumbing,
  which calls the program's own handler for the signal too.
- The wake-up fd is one per process.  If the program already set one, it is
  left in place and the dump is taken when the Python-level handler runs.
- ``fork`` copies the fd but not the thread: the child gets a pipe and a
  thread of its own, or its signals would make the parent dump.
"""

from __future__ import annotations

import gc
import os
import signal as _stdsignal
import sys
import threading
from typing import IO, Any

from .. import _originals, _signals, _waiter
from ..greenlet import Greenlet
from ..hub import Hub, get_hub
from . import _frames, _watch

__all__ = ["dump", "dump_on", "format_hub", "parse_signal"]

_monotonic = _originals.monotonic


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _state(g: Any, waiter: _waiter.Waiter | None, now: float) -> str:
    if waiter is not None:
        since = waiter.since
        waited = "" if since is None else f" for {now - since:.3f} s"
        return f"waiting on {waiter.describe()}{waited}"
    if isinstance(g, Greenlet) and not g:
        return "not started yet"
    return "ready to run"


def format_hub(hub: Hub, running_top: Any = None) -> str:
    """Every live task of ``hub``: name, state, what it waits on and for how long, and its stack.

    Args:
        running_top: the innermost frame of the greenlet running on the
            hub's thread (read from another thread), if not the caller's.
    """
    now = _monotonic()
    if running_top is None:
        running_top = _frames.thread_frame(hub.thread_ident)
    running: Any = None
    who = ""
    if running_top is not None:
        running, who = _frames.running_greenlet(hub, running_top)
    waits: dict[Any, _waiter.Waiter] = {}
    tasks: list[Greenlet[Any]] = []
    for obj in gc.get_objects():
        if isinstance(obj, Greenlet):
            if obj.parent is hub and obj.started and not obj.dead:
                tasks.append(obj)
        elif isinstance(obj, _waiter.Waiter) and obj.hub is hub and obj.greenlet is not None:
            waits[obj.greenlet] = obj
    stats = hub.statistics()
    main = hub.thread_ident == threading.main_thread().ident
    lines = [
        f"corun: the hub of {'the main thread' if main else 'thread'} {hub.thread_ident}: "
        f"{_count(len(tasks), 'live task')}, {_count(stats.io_waits, 'fd wait')}, "
        f"{_count(stats.timers, 'timer')}, {_count(stats.ready, 'callback')} ready, "
        f"{_count(stats.passes, 'pass', 'passes')} of its loop so far"
    ]

    def entry(title: str, state: str, top: Any, skip_inner: bool) -> None:
        lines.append("")
        lines.append(f"{title}: {state}")
        if top is not None:
            lines.append(_frames.stack_text(top, skip_inner_corun=skip_inner).rstrip("\n"))

    root = hub.parent
    if running is hub:
        entry("the hub", "running (a callback or its own loop)", running_top, False)
    if root is not None and not root.dead:
        if running is root:
            entry("the main task", "running", running_top, False)
        else:
            entry("the main task", _state(root, waits.get(root), now), root.gr_frame, True)
    for g in tasks:
        title = f"task {g.name!r}"
        if g is running:
            entry(title, "running", running_top, False)
        else:
            entry(title, _state(g, waits.get(g), now), g.gr_frame, True)
    if running is None and who:
        entry(who, "running", running_top, False)
    return "\n".join(lines) + "\n"


def dump(file: IO[str] | None = None) -> None:
    """Print every live task of the calling thread's hub to ``file`` (default ``sys.stderr``).

    Each with its name, state, what it waits on (the words of ``LoopExit``),
    how long it has waited (while a monitor or a dump signal is on, which
    time waits) and its stack.
    """
    text = format_hub(get_hub(), sys._getframe(1))
    stream = sys.stderr if file is None else file
    stream.write(text)
    stream.flush()


# -- on a signal -----------------------------------------------------------------------------

_installed: dict[int, Any] = {}  # signal number -> its listener
_pipe: tuple[int, int] | None = None  # (read end, write end) of the wake-up fd
_own_wakeup_fd = False


def parse_signal(text: str) -> int:
    """A signal number from ``SIGUSR1``, ``USR1`` or ``10``.

    Raises:
        ValueError: no such signal.
    """
    name = text.strip().upper()
    if name.isdigit():
        return _stdsignal.Signals(int(name)).value
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(_stdsignal.Signals, name))
    except AttributeError:
        raise ValueError(f"no signal called {text!r}") from None


def dump_on(signum: int) -> None:
    """Write the dump of every hub of the process to stderr each time signal ``signum`` arrives.

    Works while a task blocks the hub: a real OS thread writes the dump.
    From the main thread only (where signal handlers are set).

    Raises:
        ValueError: not the main thread, or a signal that cannot be caught.
    """
    global _own_wakeup_fd
    signum = int(signum)
    if signum in _installed:
        return
    if _originals.get_ident() != threading.main_thread().ident:
        raise ValueError("dump_on() must be called from the main thread")
    _start_reader()
    assert _pipe is not None
    if not _own_wakeup_fd:
        previous = _stdsignal.set_wakeup_fd(_pipe[1], warn_on_full_buffer=False)
        if previous != -1:
            # The program's own; it stays, and the Python-level handler asks for the dump.
            _stdsignal.set_wakeup_fd(previous)
        else:
            _own_wakeup_fd = True

    def listener() -> None:
        if not _own_wakeup_fd and _pipe is not None:
            try:
                _originals.os_write(_pipe[1], bytes([signum]))
            except OSError:
                pass

    _installed[signum] = listener
    if not _signals.listen(signum, listener):
        del _installed[signum]
        raise ValueError(f"signal {signum} cannot be caught by Python here")
    _waiter.wait_clock = _monotonic


def _start_reader() -> None:
    global _pipe
    if _pipe is not None:
        return
    r, w = _originals.os_pipe()
    os.set_blocking(w, False)
    _pipe = (r, w)
    _originals.start_new_thread(_read_signals, (r,))


def _read_signals(fd: int) -> None:
    _watch._marks.monitor = True
    while True:
        try:
            data = _originals.os_read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        if any(b in _installed for b in data):
            _write_dump()


def _write_dump() -> None:
    """The dump of every hub, written straight to fd 2."""
    frames = sys._current_frames()
    parts = []
    for hub in _watch.watched_hubs():
        try:
            parts.append(format_hub(hub, frames.get(hub.thread_ident)))
        except Exception as exc:  # one unreadable hub must not hide the others
            parts.append(f"corun: the hub of thread {hub.thread_ident} could not be dumped: {exc!r}\n")
    data = "\n".join(parts).encode("utf-8", "backslashreplace")
    while data:
        try:
            written = _originals.os_write(2, data)
        except InterruptedError:
            continue
        except OSError:
            return
        data = data[written:]


def _reinit_after_fork() -> None:
    global _pipe, _own_wakeup_fd
    if _pipe is None:
        return
    old = _pipe
    _pipe = None
    for fd in old:
        try:
            _originals.os_close(fd)
        except OSError:
            pass
    _start_reader()
    assert _pipe is not None
    if _own_wakeup_fd:
        try:
            _stdsignal.set_wakeup_fd(_pipe[1], warn_on_full_buffer=False)
        except ValueError:  # forked from a thread that is not the main one
            _own_wakeup_fd = False


# Called by ``corun.monitor`` for each new hub.
def _on_create(hub: Hub) -> None:
    text = os.environ.get("CORUN_DUMP_ON", "")
    if not text or _watch.in_monitor_thread() or hub.thread_ident != threading.main_thread().ident:
        return
    try:
        dump_on(parse_signal(text))
    except ValueError as exc:
        print(f"corun: CORUN_DUMP_ON={text}: {exc}", file=sys.stderr)


os.register_at_fork(after_in_child=_reinit_after_fork)
