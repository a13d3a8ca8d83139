"""Deadlines: ``Timeout`` raises in the task that started it when time is up."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from greenlet import getcurrent

from ._waiter import throw_into
from .hub import TimerHandle, get_hub

__all__ = ["Timeout", "with_timeout"]

T = TypeVar("T")
_NOTSET: Any = object()


class Timeout(BaseException):
    """A deadline for a block of code in one task.

    A ``BaseException`` so that ``except Exception`` does not swallow it.
    ``exception`` replaces what is raised: a class or an instance, or
    ``False`` to leave a ``with`` block silently.
    """

    def __init__(
        self,
        seconds: float | None = None,
        exception: type[BaseException] | BaseException | bool | None = None,
    ) -> None:
        super().__init__(seconds)
        if seconds is not None and not isinstance(seconds, (int, float)):
            raise TypeError(f"Timeout seconds must be a number or None, not {type(seconds).__name__}")
        self.seconds = seconds
        self.exception = exception
        self.timer: TimerHandle | None = None
        self._owner: Any = None

    @classmethod
    def start_new(
        cls,
        timeout: float | Timeout | None = None,
        exception: type[BaseException] | BaseException | bool | None = None,
    ) -> Timeout:
        """Create a Timeout (or take the given one) and start it."""
        if isinstance(timeout, Timeout):
            if not timeout.pending:
                timeout.start()
            return timeout
        t = cls(timeout, exception)
        t.start()
        return t

    def start(self) -> None:
        """Start the countdown in the current task."""
        if self.pending:
            raise RuntimeError(f"{self!r} is already started")
        if self.seconds is None:
            return  # never expires
        owner = getcurrent()
        refusal = getattr(owner, "refuses_interrupts", None)
        if refusal:
            raise RuntimeError(f"a corun.Timeout cannot interrupt {owner!r}: {refusal}")
        self._owner = owner
        self.timer = get_hub().call_later(self.seconds, self._expire)

    def _expire(self) -> None:
        owner = self._owner
        if owner is None or owner.dead:
            return
        exc = self.exception
        if exc is None or exc is False or exc is True:
            exc = self
        elif isinstance(exc, type):
            exc = exc()
        throw_into(owner, exc)

    @property
    def pending(self) -> bool:
        """True while the countdown runs."""
        return self.timer is not None and self.timer.pending

    def cancel(self) -> None:
        """Stop the countdown (a no-op if it is not running)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    close = cancel

    def __enter__(self) -> Timeout:
        if not self.pending:
            self.start()
        return self

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.cancel()
        return value is self and self.exception is False

    def __repr__(self) -> str:
        extra = "" if self.exception is None else f", exception={self.exception!r}"
        return f"<Timeout seconds={self.seconds}{extra}{' pending' if self.pending else ''}>"

    def __str__(self) -> str:
        if self.seconds is None:
            return ""
        unit = "second" if self.seconds == 1 else "seconds"
        if self.exception is None or self.exception is False or self.exception is True:
            return f"{self.seconds} {unit}"
        return f"{self.seconds} {unit} ({self.exception})"


def with_timeout(
    seconds: float | None,
    function: Callable[..., T],
    *args: Any,
    timeout_value: Any = _NOTSET,
    **kwargs: Any,
) -> T:
    """Call ``function`` with a deadline; on expiry return ``timeout_value`` if given, else raise."""
    t = Timeout.start_new(seconds)
    try:
        return function(*args, **kwargs)
    except Timeout as exc:
        if exc is t and timeout_value is not _NOTSET:
            return timeout_value
        raise
    finally:
        t.cancel()
