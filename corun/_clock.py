"""What the hub asks of a clock that is not real time (``corun.testing.VirtualClock``).

A hub runs on any callable returning seconds (``Hub(clock=...)``).  A clock
that also implements ``TimeWarp`` decides how long the hub's poll really
waits when every task waits, and is told when that poll brought nothing, so
that it can jump to the deadline the hub was waiting for.  The hub needs
nothing else from it; the time patches read ``time``/``perf_counter`` so that
a patched program's ``time.time()`` follows the same clock.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["TimeWarp"]


@runtime_checkable
class TimeWarp(Protocol):
    """A hub clock whose time moves when the hub has nothing to do, not with the wall."""

    def __call__(self) -> float:
        """Now, in seconds, as ``time.monotonic`` would say it."""
        ...

    def real_timeout(self, timeout: float, pending: int) -> float:
        """How long the poll may really block when the next deadline is ``timeout`` clock seconds away.

        ``timeout`` is 0 when work is ready and -1 when no deadline exists;
        ``pending`` counts work in other OS threads whose result will come
        back (``Hub.pending``).  The answer is in real seconds, -1 meaning
        until an fd is ready.
        """
        ...

    def skip(self, timeout: float) -> None:
        """The poll that ``real_timeout`` bounded came back empty: move on by ``timeout`` (ignore if <= 0)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch on this clock, as ``time.time`` would say them."""
        ...

    def perf_counter(self) -> float:
        """A high-resolution counter on this clock, as ``time.perf_counter`` would say it."""
        ...
