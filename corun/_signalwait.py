"""Whether a signal may still wake a hub that has nothing else to wait for, and how long to wait for it.

Plainly, a main thread blocked on a lock or an event that only a signal
handler releases simply waits until the signal comes, and so must the hub,
rather than report a deadlock (``LoopExit``):

- An armed ``alarm``/``setitimer(ITIMER_REAL)`` will send SIGALRM; the hub
  waits until then.  The CPU-time timers do not count: a process whose tasks
  all wait uses no CPU, so SIGVTALRM and SIGPROF never come.
- Any other signal another process can send (SIGTERM from a supervisor,
  SIGHUP, SIGUSR1, SIGCHLD from a child) may come at any time once the
  program has a Python handler for it.  The timer signals do not count here
  (their timers say whether they come), nor Ctrl-C's ``default_int_handler``,
  which every program has.
- A handler runs inside ``epoll_wait`` (``EINTR``, then the hub is woken), but
  a signal arriving between this check and the poll would not interrupt
  the poll, so the hub waits a bounded time and checks again.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from . import _originals

__all__ = ["POLL_FOR_SIGNALS", "set_program_handler_lookup", "signal_to_come"]

# Seconds the hub waits at a time for a signal that only a handler's presence announces.
POLL_FOR_SIGNALS = 1.0

# Sent by the process's own timers, or never caught.
_NOT_FROM_OUTSIDE = frozenset(
    getattr(signal, name)
    for name in ("SIGALRM", "SIGVTALRM", "SIGPROF", "SIGKILL", "SIGSTOP")
    if hasattr(signal, name)
)
_OTHERS = tuple(sorted(set(signal.valid_signals()) - _NOT_FROM_OUTSIDE))

# The handler the program set for a signal; corun's signal module, which may put
# a dispatcher of its own in front of it, replaces this with its own lookup.
_program_handler: Callable[[int], object] = _originals.getsignal


def set_program_handler_lookup(lookup: Callable[[int], object]) -> None:
    """Tell which handler the program set for a signal, behind whatever corun installed."""
    global _program_handler
    _program_handler = lookup


def signal_to_come() -> float | None:
    """How long the hub may wait for a signal whose Python handler may wake a task, or None if none can."""
    if _originals.getitimer is not None:
        left: float = _originals.getitimer(signal.ITIMER_REAL)[0]
        if left > 0 and callable(_originals.getsignal(signal.SIGALRM)):
            return min(left, POLL_FOR_SIGNALS) if _handled_from_outside() else left
    return POLL_FOR_SIGNALS if _handled_from_outside() else None


def _handled_from_outside() -> bool:
    for signum in _OTHERS:
        try:
            handler = _program_handler(signum)
        except (OSError, ValueError):
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            return True
    return False
