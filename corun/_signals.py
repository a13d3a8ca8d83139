"""Signal handlers that fit the hub, and ``signal_handler``, which runs a function in a new task.

Facts this module relies on:

- CPython runs a Python-level handler in the main thread, between two
  bytecodes of whatever greenlet is running there: the main task, another
  task, or the hub itself.  When the hub sits in ``epoll_wait``, the signal
  interrupts it (``EINTR``), the handler runs inside the poll call, and the
  poll then *resumes waiting* with the time it had left (PEP 475).  Whatever
  the handler scheduled (a task, a wake-up) would wait with it, so after a
  handler runs in the hub, the hub is woken through its wake-up fd
  (``run_callback_threadsafe``).
- The hub must never block.  A handler that arrives while the hub runs is
  therefore run in a task of its own, which runs before the next task the
  hub resumes goes on (``Hub.call_urgent``).  Merely scheduling that task
  was not enough: the main task could resume first and block in C
  (gunicorn's master waits on a ``queue.SimpleQueue`` made before
  patching) with the handler, the only thing that would wake it, still
  queued behind it.  A handler that arrives while a task runs is run right
  there, as the stdlib would (a task busy computing may be exactly what the
  handler is meant to interrupt or inform).
- The stdlib raises a handler's exception in the main thread.  The main
  thread's code is the root greenlet (the main task), so an exception a
  handler raises anywhere else is delivered there instead of killing an
  unrelated task.
- corun itself sometimes needs to hear a signal (SIGCHLD, to know when to
  look for children that exited).  The program's handler must keep running
  and ``signal.getsignal`` must keep reporting it, so while corun listens the
  OS-level handler is ``_dispatch``, which calls corun's listeners and then
  the program's handler, and the program's handler is kept in ``_program``.
- While the shell of ``os.system`` runs, the C ``system()`` ignores SIGINT
  and SIGQUIT in the whole process (counting overlapping calls) and blocks
  SIGCHLD in the calling thread, so that no handler of the program reaps
  the shell before ``system()`` does.  corun does the same for SIGINT and
  SIGQUIT (``shell_started``/``shell_ended``).  SIGCHLD is not blocked in
  the OS: every task shares the one thread, and tasks waiting for other
  children (corun's listeners) must keep hearing it; only the program's
  handler is held back (one set through corun: the patched ``signal.signal``),
  and runs once the last shell has ended if SIGCHLD came meanwhile, as a
  blocked signal is delivered once unblocked.  A child forked meanwhile runs
  no shell: it gets its handlers back at once.
"""

from __future__ import annotations

import os
import signal as _stdsignal
from collections.abc import Callable
from types import FrameType
from typing import Any

from greenlet import getcurrent

from . import _originals
from ._signalwait import set_program_handler_lookup
from ._waiter import Waiter, throw_into
from .hub import Hub, _peek_hub, get_hub

__all__ = [
    "SignalHandler",
    "can_set_handlers",
    "get_handler",
    "hears",
    "listen",
    "pause",
    "set_handler",
    "shell_ended",
    "shell_started",
    "signal_handler",
    "unlisten",
]

# The originals: this module is imported with corun, before anything is patched.
_os_signal = _stdsignal.signal
_os_getsignal = _stdsignal.getsignal
SIG_DFL = _stdsignal.SIG_DFL
SIG_IGN = _stdsignal.SIG_IGN

Handler = Callable[[int, FrameType | None], Any] | int | None

# The program's handler for each signal whose OS-level handler is _dispatch.
_program: dict[int, Any] = {}
# corun's own listeners, per signal; each is called with no arguments.
_listeners: dict[int, list[Callable[[], None]]] = {}


class _Handler:
    """What is installed at the OS level in place of a handler the program set."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.handler = handler

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        _run_program_handler(self.handler, signum, frame)

    def __repr__(self) -> str:
        return f"<corun handler for {self.handler!r}>"


def _dispatch(signum: int, frame: FrameType | None) -> None:
    """The OS-level handler while corun listens to ``signum``: corun's listeners, then the program's."""
    for listener in list(_listeners.get(signum, ())):
        listener()
    handler = _program.get(signum, SIG_DFL)
    if callable(handler):
        _run_program_handler(handler, signum, frame)


def _run_program_handler(handler: Callable[..., Any], signum: int, frame: FrameType | None) -> None:
    if signum in _held:
        _held_arrived.add(signum)
        return
    hub = _peek_hub()
    current = getcurrent()
    if hub is None or current is hub.parent:
        # The main task: exactly where the stdlib would run it.
        try:
            handler(signum, frame)
        finally:
            _wake_pausers()
        return
    if isinstance(handler, SignalHandler):
        handler._spawn()
        _wake_pausers()
    elif current is hub:
        hub.call_urgent(lambda: _handler_task(hub, handler, signum, frame))
    else:
        _handler_task(hub, handler, signum, frame)
    if current is hub:
        # The hub may be inside epoll_wait, which resumes after a handler:
        # make it come out and run what was just scheduled.
        hub.run_callback_threadsafe(_nothing)


def _handler_task(hub: Hub, handler: Callable[..., Any], signum: int, frame: FrameType | None) -> None:
    try:
        handler(signum, frame)
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        # What the handler raised.  A kill or a Timeout of the task it runs in
        # (GreenletExit, Timeout: other BaseExceptions) stays in that task.
        _raise_in_main_task(hub, exc)
    finally:
        _wake_pausers()


def _raise_in_main_task(hub: Hub, exc: BaseException) -> None:
    main = hub.parent
    current = getcurrent()
    if current is hub or main is None or main.dead:
        hub.run_callback(throw_into, main, exc)
        return
    # As a signal handler's exception in the main thread: the main task gets
    # it now, before anything queued can resume it (a join that just ended
    # must not return first); this task goes on once the hub comes back to it.
    hub.run_callback(_resume_if_alive, current)
    throw_into(main, exc)


def _resume_if_alive(g: Any) -> None:
    if not g.dead:
        g.switch()


def _nothing() -> None:
    pass


# Tasks in pause(), each with its hub.
_pausers: dict[Waiter, Hub] = {}


def _wake_pausers() -> None:
    for w, hub in list(_pausers.items()):
        hub.wake_threadsafe(w)


def pause() -> None:
    """``signal.pause`` for one task: park it until a signal handler the program set has run.

    While it waits, the hub does not report a hang: a signal may come at any time.
    """
    hub = get_hub()
    w = Waiter(hub, "a signal")
    _pausers[w] = hub
    hub.pending += 1
    try:
        w.get()
    finally:
        hub.pending -= 1
        del _pausers[w]


def _unwrap(signum: Any, installed: Any) -> Any:
    """The program's view of the OS-level handler ``installed``."""
    installed = _behind_shell_ignore(signum, installed)
    if installed is _dispatch:
        return _program.get(int(signum), SIG_DFL)
    if isinstance(installed, _Handler):
        return installed.handler
    return installed


def _wrap(handler: Any) -> Any:
    """What to install at the OS level for the program's ``handler``."""
    # The default SIGINT handler is wrapped too: raised inside a task started
    # as a thread, its KeyboardInterrupt would end only that "thread".
    if callable(handler):
        return _Handler(handler)
    return handler


def set_handler(signum: int, handler: Handler) -> Handler:
    """``signal.signal`` for corun: install the program's handler; return the previous one.

    Raises:
        The stdlib's errors for a bad signal number or handler, or when
        called outside the main thread (the original ``signal.signal`` checks).
    """
    previous = _set_handler(signum, handler)
    if isinstance(signum, int):
        # The program's choice stands, also once os.system's shells have ended.
        _after_shells.pop(int(signum), None)
    return previous


def _set_handler(signum: int, handler: Handler) -> Handler:
    key = int(signum) if isinstance(signum, int) else None
    keep_dispatch = (
        key is not None
        and bool(_listeners.get(key))
        and handler is not SIG_IGN
        and (callable(handler) or (isinstance(handler, int) and handler == SIG_DFL))
    )
    if keep_dispatch:
        assert key is not None
        had = key in _program
        previous = _program.get(key, SIG_DFL)
        # Recorded first: a signal arriving meanwhile finds the new handler.
        _program[key] = handler
        try:
            old = _os_signal(signum, _dispatch)
        except BaseException:
            if had:
                _program[key] = previous
            else:
                del _program[key]
            raise
        return previous if old is _dispatch else _unwrap(signum, old)
    old = _os_signal(signum, _wrap(handler))
    if old is _dispatch:
        return _program.pop(int(signum), SIG_DFL)
    return _unwrap(signum, old)


def get_handler(signum: int) -> Handler:
    """``signal.getsignal`` for corun: the handler the program set."""
    return _unwrap(signum, _os_getsignal(signum))


# The hub asks which handlers the program has when deciding whether a wait can end.
set_program_handler_lookup(get_handler)


def can_set_handlers() -> bool:
    """Whether this OS thread may set signal handlers: the main thread only, as ``signal.signal`` says."""
    import threading  # at call time: the module may be patched by then, and main_thread() stays true

    return _originals.get_ident() == threading.main_thread().ident


def hears(signum: int) -> bool:
    """Whether corun's listeners of ``signum`` are called when it arrives."""
    return bool(_listeners.get(signum)) and _os_getsignal(signum) is _dispatch


def listen(signum: int, listener: Callable[[], None]) -> bool:
    """Call ``listener()`` (from a signal handler: it must not block) when ``signum`` arrives.

    For signals whose default action is to be ignored (SIGCHLD).  Idempotent.

    Returns:
        Whether it will actually be called: not when the signal is ignored
        (``SIG_IGN``), handled outside Python, or when corun's handler cannot
        be installed because this is not the main thread.
    """
    listeners = _listeners.setdefault(signum, [])
    if listener not in listeners:
        listeners.append(listener)
    current = _os_getsignal(signum)
    if current is _dispatch:
        return True
    if current is SIG_IGN or current is None:
        return False
    _program[signum] = _unwrap(signum, current)
    try:
        _os_signal(signum, _dispatch)
    except ValueError:  # not the main thread
        del _program[signum]
        return False
    return True


def unlisten(signum: int, listener: Callable[[], None]) -> None:
    """Stop calling ``listener``; with no listener left, the program's handler is installed again."""
    listeners = _listeners.get(signum, [])
    if listener in listeners:
        listeners.remove(listener)
    if listeners:
        return
    _listeners.pop(signum, None)
    if _os_getsignal(signum) is not _dispatch:
        return
    handler = _program.get(signum, SIG_DFL)
    try:
        _os_signal(signum, _wrap(handler))
    except ValueError:
        # Not the main thread: _dispatch stays, calling only the program's handler.
        return
    _program.pop(signum, None)


# -- while os.system's shell runs -------------------------------------------------

_SIGCHLD: int | None = getattr(_stdsignal, "SIGCHLD", None)
# What the C system() ignores in the parent while its shell runs.
_IGNORED_DURING_SHELLS = tuple(
    getattr(_stdsignal, name) for name in ("SIGINT", "SIGQUIT") if hasattr(_stdsignal, name)
)
_shells = 0
# The OS-level handlers that SIG_IGN stands in for while shells run.
_after_shells: dict[int, Any] = {}
# The signals of _IGNORED_DURING_SHELLS that were not ignored before.
_default_in_shell: tuple[int, ...] = ()
# Signals whose program handler is held back, and those that arrived meanwhile.
_held: set[int] = set()
_held_arrived: set[int] = set()


def _behind_shell_ignore(signum: Any, installed: Any) -> Any:
    """``installed``, or, if it is the SIG_IGN of a running shell, the handler it stands in for."""
    if installed is SIG_IGN and isinstance(signum, int):
        return _after_shells.get(int(signum), SIG_IGN)
    return installed


def shell_started() -> tuple[int, ...]:
    """Call just before ``os.system`` starts its shell (main thread only); pair with ``shell_ended``.

    The first of overlapping calls ignores SIGINT and SIGQUIT, and holds back
    the program's SIGCHLD handler (see the facts above).

    Returns:
        The signals the shell must get back at their default action
        (``posix_spawn``'s ``setsigdef``): those this process did not ignore.
    """
    global _shells, _default_in_shell
    if _shells == 0:
        reset = []
        for signum in _IGNORED_DURING_SHELLS:
            installed = _os_getsignal(signum)
            if installed is SIG_IGN:
                continue
            reset.append(signum)
            if installed is not None:  # None: set outside Python, and could not be put back
                _after_shells[signum] = installed
                _os_signal(signum, SIG_IGN)
        _default_in_shell = tuple(reset)
        if _SIGCHLD is not None:
            _held.add(_SIGCHLD)
    _shells += 1
    return _default_in_shell


def shell_ended() -> None:
    """Call once the shell of ``os.system`` has been reaped; the last call undoes ``shell_started``.

    Raises:
        What the program's SIGCHLD handler raises, when it is run here.
    """
    global _shells
    _shells -= 1
    if _shells:
        return
    _undo_shell_signals()
    if _SIGCHLD is not None and _SIGCHLD in _held_arrived:
        _held_arrived.clear()
        handler = get_handler(_SIGCHLD)
        if callable(handler):
            _run_program_handler(handler, _SIGCHLD, None)
    _held_arrived.clear()


def _undo_shell_signals() -> None:
    for signum, installed in list(_after_shells.items()):
        # Still ours to undo: the program did not set a handler meanwhile.
        if _os_getsignal(signum) is SIG_IGN:
            _os_signal(signum, installed)
    _after_shells.clear()
    _held.clear()


def _forget_shells_in_child() -> None:
    global _shells
    if _shells:
        _shells = 0
        _held_arrived.clear()
        try:
            _undo_shell_signals()
        except ValueError:  # forked from another OS thread: handlers cannot be set there
            _held.clear()


os.register_at_fork(after_in_child=_forget_shells_in_child)


class SignalHandler:
    """A signal handled by running a function in a new task; ``cancel()`` restores the previous handler."""

    def __init__(
        self, signum: int, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if not callable(func):
            raise TypeError(f"signal_handler() needs a callable, not {func!r}")
        self.signum = signum
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self._active = False
        # What was installed at the OS level, to put back exactly that.
        self._replaced = _behind_shell_ignore(signum, _os_getsignal(signum))
        self._previous = set_handler(signum, self)
        self._active = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self._spawn()

    def _spawn(self) -> None:
        from .greenlet import spawn

        spawn(self.func, *self.args, **self.kwargs)

    @property
    def active(self) -> bool:
        """True until ``cancel()``."""
        return self._active

    def cancel(self) -> None:
        """Stop handling the signal and put back the handler it replaced (a no-op the second time)."""
        if not self._active:
            return
        self._active = False
        signum, previous, replaced = self.signum, self._previous, self._replaced
        # Another handler installed since then stays; only ours is taken out.
        if get_handler(signum) is not self:
            return
        if _os_getsignal(signum) is _dispatch or replaced is _dispatch:
            set_handler(signum, previous)
        else:
            _os_signal(signum, replaced)

    def __repr__(self) -> str:
        state = "active" if self._active else "cancelled"
        return f"<SignalHandler {self.signum} -> {self.func!r} {state}>"


def signal_handler(signum: int, func: Callable[..., Any], *args: Any, **kwargs: Any) -> SignalHandler:
    """Run ``func(*args, **kwargs)`` in a new task each time signal ``signum`` arrives.

    Returns:
        A ``SignalHandler``; its ``cancel()`` restores the handler installed before.

    Raises:
        TypeError: ``func`` is not callable.
        ValueError: not called from the main thread, or no such signal.
        OSError: the signal cannot be caught (SIGKILL, SIGSTOP).
    """
    return SignalHandler(signum, func, args, kwargs)
