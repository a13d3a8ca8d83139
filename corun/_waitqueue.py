"""One fair wait queue under every synchronisation primitive.

FIFO of ``QueuedWaiter`` objects.  A waiter that leaves early (timeout, kill) is not
searched for and removed; it is skipped when it reaches the front ("lazy
removal"), and the deque is compacted when skipped entries become the
majority, so a loop of timed-out waits cannot grow it without bound.

Hand-off: ``grant(value)`` gives the first live waiter something (a lock unit,
an item) and schedules it to run.  If that task is cancelled before it runs,
``park`` re-raises the cancellation and returns the grant through the
``give_back`` callback, so nothing granted is ever lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._waiter import TIMED_OUT, QueuedWaiter

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["WaitQueue"]

_COMPACT_MIN = 32


class WaitQueue:
    """FIFO of parked tasks with lazy removal of cancelled entries."""

    __slots__ = ("_stale", "_waiters")
    if TYPE_CHECKING:
        # Read-only outside this module: the waiters in arrival order, cancelled
        # ones included until they reach the front.  Hot paths (Queue.put, get)
        # test it to skip a queue nobody parked in.  It is the ``_waiters`` slot
        # under a second name (set below the class), so reading it costs no
        # Python call, as ``__bool__`` or a property would.
        parked: deque[QueuedWaiter]

    def __init__(self) -> None:
        self._waiters: deque[QueuedWaiter] = deque()
        self._stale = 0

    def __len__(self) -> int:
        return len(self._waiters) - self._stale

    def __bool__(self) -> bool:
        return len(self._waiters) > self._stale

    def park(
        self,
        hub: Hub,
        what: object,
        timeout: float | None = None,
        give_back: Callable[[Any], None] | None = None,
        value: Any = None,
    ) -> Any:
        """Wait at the back of the queue until granted; return the grant.

        Returns ``TIMED_OUT`` when ``timeout`` passes first.  ``value`` is
        stored on the waiter for the granting side to read (an item to put).
        """
        w = QueuedWaiter(hub, what)
        w.value = value
        self._waiters.append(w)
        try:
            result = w.get(timeout)
        except BaseException:
            self._left(w, give_back)
            raise
        if result is TIMED_OUT:
            self._left(w, give_back)
        return result

    def _left(self, w: QueuedWaiter, give_back: Callable[[Any], None] | None) -> None:
        if w.granted:
            # Granted while the cancellation was already on its way.
            if give_back is not None:
                give_back(w.value)
            return
        waiters = self._waiters
        if waiters and waiters[-1] is w:
            waiters.pop()
            return
        self._stale += 1
        if self._stale > _COMPACT_MIN and self._stale * 2 > len(waiters):
            self._waiters = deque(x for x in waiters if x.greenlet is not None and not x.granted)
            self._stale = 0

    def first(self) -> QueuedWaiter | None:
        """The first live waiter, dropping cancelled ones in front of it."""
        waiters = self._waiters
        while waiters:
            w = waiters[0]
            if w.greenlet is not None and not w.granted:
                return w
            waiters.popleft()
            self._stale -= 1
        return None

    def grant(self, value: Any = True) -> QueuedWaiter | None:
        """Hand ``value`` to the first live waiter and schedule it; None if none."""
        w = self.first()
        if w is None:
            return None
        self._waiters.popleft()
        w.granted = True
        w.value = value
        w.hub.wake(w, value)
        return w

    def grant_all(self, value: Any = True) -> int:
        """Wake every live waiter with ``value``; return how many."""
        waiters = self._waiters
        if not waiters:
            return 0
        n = 0
        self._waiters = deque()
        self._stale = 0
        for w in waiters:
            if w.greenlet is not None and not w.granted:
                w.granted = True
                w.value = value
                w.hub.wake(w, value)
                n += 1
        return n

    def live(self) -> list[QueuedWaiter]:
        """The live waiters, front first."""
        return [w for w in self._waiters if w.greenlet is not None and not w.granted]


WaitQueue.parked = WaitQueue.__dict__["_waiters"]  # the slot's own descriptor: a plain attribute read
