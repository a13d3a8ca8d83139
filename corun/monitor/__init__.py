"""Seeing what the hub does: the blocking monitor, the task dump and loop statistics.

- ``start(threshold)`` watches the calling thread's hub from a real OS
  thread and reports, once per episode, each time the hub stays away from
  its loop for longer than ``threshold`` seconds: what ran (a task's name),
  its stack at that moment, and the total duration once it ends.  Reports
  go to the ``corun.monitor`` logger (WARNING) and to ``add_listener``
  callbacks.  ``python -m corun --monitor[=SECONDS]`` and the environment
  variable ``CORUN_MONITOR=SECONDS`` watch every hub of the process.
- ``dump()`` prints every live task of the calling thread's hub with its
  state, what it waits on and its stack; ``dump_on(signal.SIGUSR1)``
  (``python -m corun --dump-on SIGUSR1``, ``CORUN_DUMP_ON=SIGUSR1``) writes
  the dump of every hub to stderr when the signal arrives, even while a task
  blocks the hub.
- ``stats()`` is ``get_hub().statistics()``: passes of the loop, callbacks
  run, timers, fd waits, live tasks, and, while a monitor watches the hub,
  the loop-lag distribution and per-task run time.
- ``corun.monitor.prometheus.register()`` exports the statistics of every
  hub through ``prometheus_client`` (the ``corun[prometheus]`` extra).
"""

from __future__ import annotations

from .._hubstats import Distribution as Distribution
from .._hubstats import HubStatistics as HubStatistics
from ..hub import get_hub
from ._dump import dump as dump
from ._dump import dump_on as dump_on
from ._watch import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD
from ._watch import BlockingReport as BlockingReport
from ._watch import Monitor as Monitor
from ._watch import add_listener as add_listener
from ._watch import enable as enable
from ._watch import remove_listener as remove_listener
from ._watch import start as start
from ._watch import stop as stop

__all__ = [
    "DEFAULT_THRESHOLD",
    "BlockingReport",
    "Distribution",
    "HubStatistics",
    "Monitor",
    "add_listener",
    "dump",
    "dump_on",
    "enable",
    "remove_listener",
    "start",
    "stats",
    "stop",
]


def stats() -> HubStatistics:
    """The calling thread's hub's statistics (``get_hub().statistics()``)."""
    return get_hub().statistics()
