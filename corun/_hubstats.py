"""What a hub reports about itself (``Hub.statistics()``), and what a monitor adds to it."""

from __future__ import annotations

from dataclasses import dataclass

from ._hubcounts import HubCounts as HubCounts
from ._hubcounts import HubMonitor as HubMonitor

__all__ = ["Distribution", "HubCounts", "HubMonitor", "HubStatistics"]


@dataclass(frozen=True)
class Distribution:
    """A summary of durations in seconds: how many, the median, the 99th percentile, the largest.

    The percentiles are read from a histogram whose buckets grow by a fifth,
    so each is the upper edge of its bucket, never more than ``max``.
    """

    count: int
    p50: float
    p99: float
    max: float


@dataclass(frozen=True)
class HubStatistics:
    """A snapshot of a hub: the work it holds and the work it has done since it started."""

    ready: int  # callbacks queued for the next pass
    timers: int  # timers still to fire
    cancelled_timers: int  # cancelled timers not yet dropped from the heap
    io_waits: int  # tasks waiting on fds
    pending: int  # jobs in other threads whose outcome will come back
    passes: int = 0  # passes of the loop
    callbacks_run: int = 0  # ready callbacks run (task switches among them)
    live_tasks: int = 0  # Greenlets started and not finished
    fds: int = 0  # fds registered with the poller
    # How late the hub came back to its loop, from the monitor's probes; None unmonitored.
    loop_lag: Distribution | None = None
    # (task name, seconds on the CPU) sampled by the monitor, longest first; None unmonitored.
    task_run_time: tuple[tuple[str, float], ...] | None = None
