"""Hub statistics as Prometheus metrics, through ``prometheus_client`` (the ``corun[prometheus]`` extra).

``register()`` adds a collector that reads every live hub's ``statistics()``
at each scrape; nothing is counted twice and nothing runs between scrapes.
Each metric has a ``thread`` label, the ident of the hub's OS thread.
Loop lag and blocked time are histograms, filled while a monitor watches
the hub (``corun.monitor.start``, ``python -m corun --monitor``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ._histogram import Histogram
from ._watch import Monitor, watched_hubs

__all__ = ["HubCollector", "register"]


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    return [("+Inf" if math.isinf(edge) else repr(edge), float(n)) for edge, n in histogram.cumulative()]


class HubCollector(Collector):
    """Collects the statistics of every live hub of the process at each scrape."""

    def describe(self) -> list[Any]:
        """The metric families, without samples (so registering does not collect)."""
        return list(self._families())

    def collect(self) -> Iterator[Any]:
        """The metric families with one sample per live hub."""
        passes, callbacks, tasks, timers, fd_waits, lag, blocked = self._families()
        for hub in watched_hubs():
            label = [str(hub.thread_ident)]
            stats = hub.statistics()
            passes.add_metric(label, stats.passes)
            callbacks.add_metric(label, stats.callbacks_run)
            tasks.add_metric(label, stats.live_tasks)
            timers.add_metric(label, stats.timers)
            fd_waits.add_metric(label, stats.io_waits)
            monitor = hub.monitor
            if isinstance(monitor, Monitor):
                lag.add_metric(label, _buckets(monitor.lag), monitor.lag.sum)
                blocked.add_metric(label, _buckets(monitor.blocked), monitor.blocked.sum)
        yield from (passes, callbacks, tasks, timers, fd_waits, lag, blocked)

    def _families(self) -> tuple[Any, ...]:
        labels = ["thread"]
        return (
            CounterMetricFamily("corun_loop_passes", "Passes of the hub's loop.", labels=labels),
            CounterMetricFamily("corun_callbacks_run", "Ready callbacks the hub has run.", labels=labels),
            GaugeMetricFamily("corun_live_tasks", "Tasks started and not finished.", labels=labels),
            GaugeMetricFamily("corun_timers", "Timers waiting to fire.", labels=labels),
            GaugeMetricFamily("corun_fd_waits", "Tasks waiting on file descriptors.", labels=labels),
            HistogramMetricFamily(
                "corun_loop_lag_seconds",
                "How late the hub ran a callback posted from the monitor thread.",
                labels=labels,
            ),
            HistogramMetricFamily(
                "corun_blocked_seconds",
                "How long each episode kept the hub from its loop (longer than the monitor's threshold).",
                labels=labels,
            ),
        )


def register(registry: CollectorRegistry | None = None) -> HubCollector:
    """Expose the statistics of every hub in ``registry`` (default: prometheus_client's global one).

    Returns:
        The collector, for ``registry.unregister``.
    """
    collector = HubCollector()
    (REGISTRY if registry is None else registry).register(collector)
    return collector
