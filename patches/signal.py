"""Cooperative twin of :mod:`signal`: handlers that keep working on the hub.

``signal.signal`` installs the program's handler through ``corun._signals``,
which runs it where it is safe (never blocking the hub), wakes the hub after
it, raises its exceptions in the main task, and shares SIGCHLD with corun's
own watch for exited children.  ``signal.getsignal`` reports the handler the
program installed, whatever corun put in front of it.  ``signal.pause``
suspends only the calling task, until one of those handlers has run.  The checks (signal
number, handler, main thread) are the original ``signal.signal``'s own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corun import _signals

__target__ = "signal"
__implements__ = ["getsignal", "pause", "signal"]
__all__ = ["getsignal", "pause", "signal"]


def signal(signalnum: int, handler: Any) -> Any:
    """Set the handler for ``signalnum``; return the previous one (as ``signal.signal``).

    Raises:
        ValueError: not the main thread, or no such signal.
        TypeError: ``handler`` is neither callable nor ``SIG_IGN``/``SIG_DFL``.
        OSError: the signal cannot be caught (SIGKILL, SIGSTOP).
    """
    if _in_a_thread():
        # The original's own check sees the main OS thread, which every task runs on.
        raise ValueError("signal only works in main thread of the main interpreter")
    return _signals.set_handler(signalnum, handler)


def _in_a_thread() -> bool:
    """Whether the calling task runs a ``threading.Thread`` of the program other than the main one."""
    import threading  # at call time: patched or not, get_ident() names the caller as threading sees it

    thread = threading._active.get(threading.get_ident())  # type: ignore[attr-defined]
    return (
        thread is not None
        and thread is not threading.main_thread()
        and not isinstance(thread, threading._DummyThread)
    )


def getsignal(signalnum: int) -> Any:
    """The handler the program set for ``signalnum`` (as ``signal.getsignal``)."""
    return _signals.get_handler(signalnum)


def pause() -> None:
    """Suspend the calling task until a signal handler has run (as ``signal.pause``, for one task)."""
    _signals.pause()


def _after_patch(target: Any) -> list[tuple[str, str, Any, Callable[[], object]]]:
    """Route Ctrl-C through corun too, so that it reaches the main task from any task (``monkey`` does it)."""
    if target.getsignal(target.SIGINT) is not target.default_int_handler or not _signals.can_set_handlers():
        # A handler of the program's own is wrapped when the program sets it
        # through the patched signal.signal; and outside the main thread no
        # handler can be set at all.
        return []
    default = target.default_int_handler
    return [(__target__, "handler(SIGINT)", default, lambda: _signals.set_handler(target.SIGINT, default))]


# Installed in ``signal``, they are its functions, and say so (pydoc lists a
# module's functions by ``__module__``), as the stdlib's own wrappers there do.
for _function in (signal, getsignal, pause):
    _function.__module__ = __target__
del _function
