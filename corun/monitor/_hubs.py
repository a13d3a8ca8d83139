"""Every hub of the process, weakly, for dumps and metrics of the whole process."""

from __future__ import annotations

import weakref

from ..hub import Hub

__all__ = ["live_hubs", "record"]

# Every hub made since corun was imported.
_hubs: list[weakref.ref[Hub]] = []


def record(hub: Hub) -> None:
    """Remember a new hub (``corun.monitor`` calls this for each one)."""
    _hubs[:] = [ref for ref in _hubs if ref() is not None]
    _hubs.append(weakref.ref(hub))


def live_hubs() -> list[Hub]:
    """Every live hub of the process, watched or not."""
    return [h for h in (ref() for ref in list(_hubs)) if h is not None and not h.destroyed]
