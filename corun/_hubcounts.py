"""What a hub counts as it runs, and what it asks of a monitor: the part of its statistics it needs to run.

The statistics themselves (``_hubstats``, dataclasses) are imported only
when asked for, so that importing the hub imports no ``dataclasses``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._hubstats import Distribution

__all__ = ["HubCounts", "HubMonitor"]


class HubCounts:
    """What a hub has done since it started, counted as it goes.

    An object of its own, fetched once per pass of the loop: the hub is a
    greenlet subclass, whose attributes live in a dict, while this class is
    compiled with the core, so the loop's counting is native field arithmetic.
    """

    __slots__ = ("callbacks_run", "live_tasks", "passes")

    def __init__(self) -> None:
        self.passes = 0
        self.callbacks_run = 0
        # Greenlets started and not finished; corun.greenlet keeps this count.
        self.live_tasks = 0


class HubMonitor(Protocol):
    """What watches a hub from another thread (``corun.monitor``), as the hub sees it."""

    def loop_lag(self) -> Distribution: ...
    def task_run_time(self) -> tuple[tuple[str, float], ...]: ...
