"""Virtual time for a hub: the clock stands still while a task can run and jumps when all of them wait."""

from __future__ import annotations

import math

from corun import _originals

__all__ = ["VirtualClock"]

# A gap to the next deadline shorter than this is float rounding of that
# deadline, not time to wait: the clock jumps at once, whatever the threshold.
_ROUNDING = 1e-6


class VirtualClock:
    """A hub clock on which waits take no real time: give it to ``Hub(clock=...)``.

    Time stands still while any task can run.  When every task waits, the hub
    polls I/O for at most ``autojump_threshold`` real seconds (0: it only
    looks), and if nothing arrived the clock jumps to the next deadline.  A
    test that talks to another process gives that process time to answer
    with a threshold above its answering time.  ``advance`` moves the clock
    by hand; the timers it makes due fire on the hub's next pass.  While
    work runs in other OS threads (the thread pool), the hub waits for it in
    real time rather than jump past it.

    Values start at the real ``time.monotonic()`` of the moment the clock is
    made, so they look like monotonic readings; ``time()`` and
    ``perf_counter()`` move with it from their own readings at that moment.
    """

    def __init__(self, autojump_threshold: float = 0.0) -> None:
        if not autojump_threshold >= 0:
            raise ValueError(
                f"autojump_threshold must be a number of seconds >= 0, not {autojump_threshold!r}"
            )
        self.autojump_threshold = float(autojump_threshold)
        self._start = self._now = _originals.monotonic()
        self._wall_start = _originals.wall_time()
        self._perf_start = _originals.perf_counter()

    def __repr__(self) -> str:
        return f"<VirtualClock elapsed={self.elapsed:.6f} autojump_threshold={self.autojump_threshold}>"

    def now(self) -> float:
        """The current virtual time, in seconds (a ``time.monotonic()`` reading)."""
        return self._now

    __call__ = now

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made, to the nanosecond (so an hour reads 3600.0)."""
        return round(self._now - self._start, 9)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``; the timers now due fire on the hub's next pass.

        Raises:
            ValueError: ``seconds`` is negative (time never goes back).
        """
        if not seconds >= 0:
            raise ValueError(f"a clock only goes forward: cannot advance by {seconds!r}")
        self._now += seconds

    def time(self) -> float:
        """Seconds since the epoch: the wall time when the clock was made plus the virtual time since."""
        return self._wall_start + (self._now - self._start)

    def perf_counter(self) -> float:
        """``time.perf_counter()`` as it read when the clock was made, plus the virtual time since."""
        return self._perf_start + (self._now - self._start)

    # -- what the hub asks (corun._clock.TimeWarp) -------------------------------------

    def real_timeout(self, timeout: float, pending: int = 0) -> float:
        """How long the hub's poll really blocks when the next deadline is ``timeout`` seconds away.

        While other OS threads have work whose result will come back
        (``pending``: a thread-pool job such as a name lookup, a lock another
        thread may release), that work can still run, so the clock does not
        jump past it: the hub waits for real, up to the deadline.
        """
        if timeout <= 0:
            return timeout  # 0: work is ready; -1: no deadline, only I/O can come
        if timeout < _ROUNDING:
            return 0.0
        if pending:
            return max(timeout, self.autojump_threshold)
        return self.autojump_threshold

    def skip(self, timeout: float) -> None:
        """Nothing came while the hub polled: jump ``timeout`` seconds, to the deadline it waited for."""
        if timeout > 0:
            # At least one step of the float, so a deadline a rounding away is reached.
            self._now = max(self._now + timeout, math.nextafter(self._now, math.inf))
