"""Event (a flag tasks wait for) and AsyncResult (a value tasks wait for)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._hubbound import HubBound
from ._waiter import TIMED_OUT
from ._waitqueue import WaitQueue
from .hub import Hub
from .timeout import Timeout

__all__ = ["AsyncResult", "Event", "EventStatistics"]

T = TypeVar("T")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@dataclass(frozen=True)
class EventStatistics:
    """A snapshot of an Event or AsyncResult."""

    is_set: bool
    waiters: int
    links: int


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

    isSet = is_set
    ready = is_set

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


class AsyncResult(_Flag, Generic[T]):
    """A value (or an exception) that one task sets and others wait for."""

    def __init__(self) -> None:
        super().__init__()
        self._value: T | None = None
        self._exc_info: ExcInfo | None = None
        self._set = False

    def __repr__(self) -> str:
        if not self._set:
            state = "unset"
        elif self._exc_info is not None:
            state = f"exception={self._exc_info[1]!r}"
        else:
            state = f"value={self._value!r}"
        return f"<AsyncResult {state} waiters={len(self._waiters)} at {id(self):#x}>"

    def ready(self) -> bool:
        """True once a value or an exception was set."""
        return self._set

    def successful(self) -> bool:
        """True if a value (not an exception) was set."""
        return self._set and self._exc_info is None

    @property
    def value(self) -> T | None:
        """The value, or None if not set or failed."""
        return self._value

    @property
    def exception(self) -> BaseException | None:
        """The exception, or None."""
        return None if self._exc_info is None else self._exc_info[1]

    @property
    def exc_info(self) -> ExcInfo | None:
        """``(type, value, traceback)`` of the exception, or None."""
        return self._exc_info

    def set(self, value: T | None = None) -> None:
        """Store ``value`` and wake every waiter."""
        hub = self._own_hub()  # refuse another thread before changing anything
        self._value = value
        self._exc_info = None
        self._set = True
        self._wake_all(hub, True)

    def set_exception(self, exception: BaseException, exc_info: ExcInfo | None = None) -> None:
        """Store an exception that ``get`` will raise, and wake every waiter."""
        hub = self._own_hub()  # refuse another thread before changing anything
        if exc_info is None:
            exc_info = (type(exception), exception, exception.__traceback__)
        self._exc_info = exc_info
        self._set = True
        self._wake_all(hub, True)

    def __call__(self, source: Any) -> None:
        """Take the outcome of a finished task, so an AsyncResult can be a link."""
        if source.successful():
            self.set(source.value)
        else:
            self.set_exception(source.exception, source.exc_info)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Return the value or raise the exception, waiting for it if needed.

        Raises:
            Timeout: not set (``block=False``) or not within ``timeout``.
        """
        if not self._set:
            if not block:
                raise Timeout(0)
            hub = self._own_hub()
            if self._waiters.park(hub, self, timeout) is TIMED_OUT and not self._set:
                raise Timeout(timeout)
        if self._exc_info is not None:
            raise self._exc_info[1].with_traceback(self._exc_info[2])
        return self._value  # type: ignore[return-value]

    def get_nowait(self) -> T:
        """``get(block=False)``."""
        return self.get(block=False)

    def wait(self, timeout: float | None = None) -> T | None:
        """Block until set or ``timeout``; return the value (None if not set or failed)."""
        if not self._set:
            hub = self._own_hub()
            self._waiters.park(hub, self, timeout)
        return self._value
