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

Importing corun imports this package, not the monitor's machinery: it keeps
track of the hubs (``_hubs``), and the blocking monitor (``_watch``) and the
task dump (``_dump``) are loaded when the program first uses one of their
names, or when a new hub must read ``CORUN_MONITOR`` or ``CORUN_DUMP_ON``.
Their hooks run from here, in the order they always ran in, each once it is
loaded.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ..hub import Hub, get_hub, register_lifecycle_hooks
from . import _hubs

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

# Each public name and the module it comes from, imported at first access.
_EXPORTS: dict[str, str] = {
    "Distribution": "corun._hubstats",
    "HubStatistics": "corun._hubstats",
    "dump": "corun.monitor._dump",
    "dump_on": "corun.monitor._dump",
    "DEFAULT_THRESHOLD": "corun.monitor._watch",
    "BlockingReport": "corun.monitor._watch",
    "Monitor": "corun.monitor._watch",
    "add_listener": "corun.monitor._watch",
    "enable": "corun.monitor._watch",
    "remove_listener": "corun.monitor._watch",
    "start": "corun.monitor._watch",
    "stop": "corun.monitor._watch",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    from importlib import import_module

    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module_name), name)
    globals()[name] = value  # later lookups do not come here again
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not imported yet."""
    return sorted({*globals(), *_EXPORTS})


_WATCH = "corun.monitor._watch"
_DUMP = "corun.monitor._dump"


def _on_create(hub: Hub) -> None:
    _hubs.record(hub)
    if _WATCH in sys.modules or os.environ.get("CORUN_MONITOR"):
        from . import _watch

        _watch._on_create(hub)
    if _DUMP in sys.modules or os.environ.get("CORUN_DUMP_ON"):
        from . import _dump

        _dump._on_create(hub)


def _on_destroy(hub: Hub) -> None:
    # A hub can be watched only once the watch is loaded.
    watch = sys.modules.get(_WATCH)
    if watch is not None:
        watch._on_destroy(hub)


def _after_fork_in_child(hub: Hub) -> None:
    watch = sys.modules.get(_WATCH)
    if watch is not None:
        watch._after_fork_in_child(hub)


register_lifecycle_hooks(
    on_create=_on_create, on_destroy=_on_destroy, after_fork_in_child=_after_fork_in_child
)


def stats() -> HubStatistics:
    """The calling thread's hub's statistics (``get_hub().statistics()``)."""
    return get_hub().statistics()


if TYPE_CHECKING:
    from .._hubstats import Distribution as Distribution
    from .._hubstats import HubStatistics as HubStatistics
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
