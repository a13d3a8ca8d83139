"""Event (a flag tasks wait for) and AsyncResult (a value tasks wait for)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generic, TypeVar

from ._event import Event, EventStatistics, _Flag
from ._waiter import TIMED_OUT
from .timeout import Timeout

__all__ = ["AsyncResult", "Event", "EventStatistics"]

T = TypeVar("T")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


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
