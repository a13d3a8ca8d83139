"""The one way a task blocks: park on a Waiter, be woken at most once.

Every blocking operation in corun (``sleep``, I/O readiness, locks, events,
queues, ``join``, ``Timeout``) comes down to ``Waiter.get()``: the current
task records itself on the waiter and switches to the hub.  Whoever holds the
waiter resumes the task with ``switch(value)`` or ``throw(exc)``; both are
called from the hub only, and both do nothing once the task has left the wait
(because it was woken already, or a kill or timeout interrupted it first).
That check, made at delivery time rather than when the wake-up was queued, is
what makes a wait "woken exactly once" even when a timer, an fd and a kill all
race for the same task.

Cancellation needs no registry: the task that leaves a wait early runs its own
``finally`` block, which is where each primitive removes its registration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenlet import getcurrent

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["TIMED_OUT", "BlockingSwitchOutError", "QueuedWaiter", "Waiter"]


class _TimedOut:
    """The value a timed wait returns when its deadline passed first."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Any = _TimedOut()


class BlockingSwitchOutError(AssertionError):
    """A wait was attempted inside the hub itself (a callback tried to block)."""


class Waiter:
    """One wait of one task: parked at most once, woken at most once."""

    __slots__ = ("granted", "greenlet", "hub", "value", "what")

    def __init__(self, hub: Hub, what: object = None) -> None:
        self.hub = hub
        self.greenlet: Any = None
        # What the task waits on, formatted only when a hang is reported.
        self.what = what
        # Set by a wait queue when it hands this waiter something (a lock, an
        # item); if the task is then cancelled before it runs, it gives it back.
        self.granted = False
        self.value: Any = None

    def get(self, timeout: float | None = None) -> Any:
        """Park the current task until woken; return the value it was woken with.

        With a timeout, returns ``TIMED_OUT`` if nothing woke the task in time.
        """
        hub = self.hub
        current = getcurrent()
        if current is hub:
            raise BlockingSwitchOutError(
                f"cannot block inside the hub (waiting on {self.describe()}); "
                "a hub callback must spawn a task to wait"
            )
        self.greenlet = current
        if timeout is None:
            try:
                value = hub.switch()
            finally:
                self.greenlet = None
        else:
            timer = hub.call_later(timeout, self.switch, TIMED_OUT)
            try:
                value = hub.switch()
            finally:
                self.greenlet = None
                timer.cancel()
        if hub.urgent_calls:
            # Signal handlers that interrupted the hub run before this task goes on.
            hub.run_urgent()
        return value

    def switch(self, value: Any = None) -> None:
        """Resume the parked task with ``value``; hub only; no-op once it left."""
        g = self.greenlet
        if g is not None:
            self.greenlet = None
            g.switch(value)

    def throw(self, exc: BaseException) -> None:
        """Raise ``exc`` in the parked task; hub only; no-op once it left."""
        g = self.greenlet
        if g is not None:
            self.greenlet = None
            g.throw(exc)

    def describe(self) -> str:
        """Say in words what this wait is for."""
        what = self.what
        if what is None:
            return "nothing in particular"
        if isinstance(what, str):
            return what
        return repr(what)

    def __repr__(self) -> str:
        return f"<Waiter {self.describe()} task={self.greenlet!r}>"


class QueuedWaiter(Waiter):
    """A waiter in a ``WaitQueue``, which may be handed something while parked."""

    __slots__ = ("granted", "value")

    def __init__(self, hub: Hub, what: object = None) -> None:
        self.hub = hub
        self.greenlet = None
        self.what = what
        # Set when the queue hands this waiter something (a lock, an item); if
        # the task is cancelled before it runs, it gives that back.
        self.granted = False
        self.value: Any = None
