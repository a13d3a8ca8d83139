"""Event, a flag tasks wait for, and what it shares with AsyncResult; compiled with the core.

``corun.event`` is the public module: it adds AsyncResult, a Python subclass
of ``_Flag`` (mypyc cannot lay out its generic class), and names both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._hubbound import HubBound
from ._mypyc import mypyc_attr
from ._waiter import TIMED_OUT
from ._waitqueue import WaitQueue
from .hub import Hub

__all__ = ["Event", "EventStatistics"]


@dataclass(frozen=True)
class EventStatistics:
    """A snapshot of an Event or AsyncResult."""

    is_set: bool
    waiters: int
    links: int


@mypyc_attr(allow_interpreted_subclasses=True)
class _Flag(HubBound):
    """What Event and AsyncResult share: the hub check, waiters and rawlinks."""

    def __init__(self) -> None:
        self._hub: Hub | None = None
        self._waiters = WaitQueue()
        self._links: list[Callable[[Any], Any]] = []
        self._notify_scheduled = False

    def ready(self) -> bool:
        raise NotImplementedError

    def rawlink(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(self)`` from the hub once this is set (must not block)."""
        if not callable(callback):
            raise TypeError(f"link callback must be callable, not {callback!r}")
        self._links.append(callback)
        if self.ready():
            self._schedule_links(self._own_hub())

    def unlink(self, callback: Callable[[Any], Any]) -> None:
        """Remove ``callback`` from the links."""
        self._links = [c for c in self._links if c != callback]

    def _wake_all(self, hub: Hub, value: Any) -> None:
        self._waiters.grant_all(value)
        if self._links:
            self._schedule_links(hub)

    def _schedule_links(self, hub: Hub) -> None:
        if not self._notify_scheduled:
            self._notify_scheduled = True
            hub.run_callback(self._notify_links)

    def _notify_links(self) -> None:
        self._notify_scheduled = False
        while self._links and self.ready():
            callback = self._links.pop(0)
            try:
                callback(self)
            except Exception:
                assert self._hub is not None
                self._hub.handle_error(f"link {callback!r} of {self!r}", *sys.exc_info())

    def statistics(self) -> EventStatistics:
        """How many tasks wait, how many links are registered."""
        return EventStatistics(self.ready(), len(self._waiters), len(self._links))


@mypyc_attr(allow_interpreted_subclasses=True)
class Event(_Flag):
    """A flag that tasks can wait for; ``set`` wakes every waiter."""

    def __init__(self) -> None:
        super().__init__()
        self._flag = False

    def __repr__(self) -> str:
        return f"<Event {'set' if self._flag else 'unset'} waiters={len(self._waiters)} at {id(self):#x}>"

    def is_set(self) -> bool:
        """True if the flag is set."""
        return self._flag

    # Methods rather than aliases of is_set: mypyc compiles no class-level aliases.
    def isSet(self) -> bool:
        """True if the flag is set (the old name of ``is_set``)."""
        return self._flag

    def ready(self) -> bool:
        """True if the flag is set: what a link waits for."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every task waiting for it."""
        hub = self._own_hub()  # refuse another thread before changing anything
        self._flag = True
        self._wake_all(hub, True)

    def clear(self) -> None:
        """Reset the flag; later ``wait`` calls block again."""
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or ``timeout`` passes; return the flag."""
        if self._flag:
            return True
        hub = self._own_hub()
        result = self._waiters.park(hub, self, timeout)
        return result is not TIMED_OUT or self._flag
