"""Testing code that uses corun: virtual time, a pytest plugin, and helpers for tests.

- ``VirtualClock``: a hub clock on which waits take no real time
  (``Hub(clock=VirtualClock())``).
- The pytest plugin (``corun.testing._plugin``, registered through the
  ``pytest11`` entry point): the ``corun_hub`` and ``virtual_clock``
  fixtures, the ``corun`` marker and ``--corun-fail-on-block=SECONDS``.
- ``fresh_hub`` and ``describe_leaks``: a hub of its own for a block of
  code, and what that code left on it.
- ``ManualClock`` (a clock the test moves by hand), ``run_in_thread`` (a
  function on a real OS thread, even when threads are patched),
  ``count_passes`` (the hub's loop passes), ``run_patched`` (a snippet in
  a fresh interpreter after ``patch_all()``), and ``run_process`` and
  ``process_group`` (a child whose whole process group is killed after).
"""

from __future__ import annotations

from ._clock import VirtualClock as VirtualClock
from ._hubs import describe_leaks as describe_leaks
from ._hubs import fresh_hub as fresh_hub
from ._tools import PATCH_ALL as PATCH_ALL
from ._tools import ManualClock as ManualClock
from ._tools import count_passes as count_passes
from ._tools import kill_group as kill_group
from ._tools import process_group as process_group
from ._tools import run_in_thread as run_in_thread
from ._tools import run_patched as run_patched
from ._tools import run_process as run_process

__all__ = [
    "PATCH_ALL",
    "ManualClock",
    "VirtualClock",
    "count_passes",
    "describe_leaks",
    "fresh_hub",
    "kill_group",
    "process_group",
    "run_in_thread",
    "run_patched",
    "run_process",
]
