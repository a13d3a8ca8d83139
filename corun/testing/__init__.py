"""Testing code that uses corun: virtual time, a pytest plugin, and helpers for tests.

- ``VirtualClock``: a hub clock on which waits take no real time
  (``Hub(clock=VirtualClock())``).
- The pytest plugin (``corun.testing._plugin``, registered through the
  ``pytest11`` entry point): the ``corun_hub`` and ``virtual_clock``
  fixtures, the ``corun`` marker and ``--corun-fail-on-block=SECONDS``.
- ``fresh_hub`` and ``describe_leaks``: a hub of its own for a block of
  code, and what that code left on it.
"""

from __future__ import annotations

from ._clock import VirtualClock as VirtualClock
from ._hubs import describe_leaks as describe_leaks
from ._hubs import fresh_hub as fresh_hub

__all__ = ["VirtualClock", "describe_leaks", "fresh_hub"]
