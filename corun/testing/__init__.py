"""Testing code that uses corun: virtual time, a pytest plugin, and helpers for tests.

``VirtualClock`` runs a hub in virtual time.  The pytest plugin
(``corun.testing._plugin``, registered through the ``pytest11`` entry point)
offers it as the ``virtual_clock`` fixture and the ``corun`` marker.
"""

from __future__ import annotations

from ._clock import VirtualClock as VirtualClock

__all__ = ["VirtualClock"]
