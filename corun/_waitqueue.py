"""The one fair wait queue: under every synchronisation primitive and the thread twins.

A FIFO of ``Waiter`` objects (how a task blocks and is woken is said in
``corun/_waiter.py``).  ``grant(value)`` hands the first waiter something (a
lock unit, an item, a turn to look) and wakes it; nobody barges past it.  If
that task is cancelled before it runs, ``park`` re-raises the cancellation and
returns the grant through the ``give_back`` callback, so nothing granted is
ever lost.

Two modes, chosen when the queue is made:

- **One thread** (the default): every waiter and every granter run on one
  hub's thread, as ``HubBound`` primitives guarantee.  A waiter that leaves
  early (timeout, kill) is not searched for and removed; it is skipped when it
  reaches the front ("lazy removal"), and the deque is compacted when skipped
  entries become the majority, so a loop of timed-out waits cannot grow it
  without bound.
- **Across threads** (``threads=...``): waiters and granters may be on
  different OS threads (the ``_thread`` and ``queue`` twins).  Facts it
  relies on: under the GIL ``deque.popleft`` and ``deque.remove`` are
  atomic, so a waiter belongs to whichever of a granter (``popleft``) and
  its own leaving task (``remove``) takes it out of the deque first; a
  waiter that finds itself taken gives the grant back at once.  So grants
  here carry no value of their own (a lock unit, a turn to look), because
  the leaving task may not see the granter's value yet.  No lock is taken:
  a signal handler or a finalizer may grant in the middle of a wait on the
  same thread.  A granted waiter on another thread is woken with
  ``wake_threadsafe``.  While another OS thread could be the granter, the
  wait counts as pending work, so the hub does not report a deadlock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _originals
from ._waiter import TIMED_OUT, Waiter

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["WaitQueue"]

_COMPACT_MIN = 32
_get_ident = _originals.get_ident


class WaitQueue:
    """FIFO of parked tasks; grants go to the first live waiter."""

    __slots__ = ("_stale", "_threads", "_waiters")

    def __init__(self, threads: Callable[[Hub], bool] | None = None) -> None:
        """Make an empty queue.

        Args:
            threads: None if all waiters and granters share one hub's thread;
                otherwise the queue works across OS threads, and
                ``threads(hub)`` says whether a wait on ``hub`` could be
                granted from another OS thread (the hub then does not take
                it for a deadlock).
        """
        self._waiters: deque[Waiter] = deque()
        self._stale = 0
        self._threads = threads

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
        recheck: Callable[[], Any] | None = None,
    ) -> Any:
        """Wait at the back of the queue until granted; return the grant.

        Returns ``TIMED_OUT`` when ``timeout`` passes first.  ``value`` is
        stored on the waiter for the granting side to read (an item to put).
        ``recheck`` is called once the task is in line: a true result ends
        the wait at once and is returned (what a grant made just before the
        task got in line would have given it).
        """
        w = Waiter(hub, what)
        w.value = value
        self._waiters.append(w)
        if recheck is not None:
            early = recheck()
            if early:
                self._left(w, give_back)
                return early
        threads = self._threads
        try:
            if threads is not None and threads(hub):
                hub.pending += 1
                try:
                    result = w.get(timeout)
                finally:
                    hub.pending -= 1
            else:
                result = w.get(timeout)
        except BaseException:
            self._left(w, give_back)
            raise
        if result is TIMED_OUT:
            self._left(w, give_back)
        return result

    def _left(self, w: Waiter, give_back: Callable[[Any], None] | None) -> None:
        """``w`` leaves the line without a grant it used; give back any it was made."""
        waiters = self._waiters
        if self._threads is not None:
            try:
                waiters.remove(w)
            except ValueError:
                # A granter took it out first: the grant is ours to pass on.
                if give_back is not None:
                    give_back(w.value)
            return
        if w.granted:
            # Granted while the cancellation was already on its way.
            if give_back is not None:
                give_back(w.value)
            return
        if waiters and waiters[-1] is w:
            waiters.pop()
            return
        self._stale += 1
        if self._stale > _COMPACT_MIN and self._stale * 2 > len(waiters):
            self._waiters = deque(x for x in waiters if x.greenlet is not None and not x.granted)
            self._stale = 0

    def first(self) -> Waiter | None:
        """The first live waiter, dropping cancelled ones in front of it (one thread only)."""
        waiters = self._waiters
        while waiters:
            w = waiters[0]
            if w.greenlet is not None and not w.granted:
                return w
            waiters.popleft()
            self._stale -= 1
        return None

    def grant(self, value: Any = True) -> Waiter | None:
        """Hand ``value`` to the first live waiter and wake it; None if none."""
        if self._threads is not None:
            return self._grant_across_threads(value)
        w = self.first()
        if w is None:
            return None
        self._waiters.popleft()
        w.granted = True
        w.value = value
        w.hub.wake(w, value)
        return w

    def _grant_across_threads(self, value: Any) -> Waiter | None:
        try:
            w = self._waiters.popleft()
        except IndexError:
            return None
        # Taken out of the deque, it is ours: even a waiter that is leaving
        # right now finds itself gone and gives the grant back.
        w.granted = True
        hub = w.hub
        if hub.thread_ident == _get_ident():
            hub.wake(w, value)
        else:
            hub.wake_threadsafe(w, value)
        return w

    def grant_all(self, value: Any = True) -> int:
        """Wake every live waiter with ``value``; return how many."""
        n = 0
        while self.grant(value) is not None:
            n += 1
        return n

    def live(self) -> list[Waiter]:
        """The live waiters, front first."""
        if self._threads is not None:
            return list(self._waiters)
        return [w for w in self._waiters if w.greenlet is not None and not w.granted]
