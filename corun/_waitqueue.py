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

A waiter can also be moved, still parked, from one line to the back of
another (``move_to``): what a condition's notify does when the lock has a
line of its own, so the task is handed the lock in its turn instead of being
woken to contend for it with tasks that never waited.  If it leaves while
moved, it leaves the line it is in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from . import _originals
from ._waiter import TIMED_OUT, Waiter

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["WaitQueue"]

_COMPACT_MIN: Final = 32
_get_ident: Final = _originals.get_ident
# A C static when compiled; ``grant_all`` makes a fresh deque on every call.
_new_deque: Final = deque


class _Moved:
    """What a waiter moved to another line holds: where it is, and how to give back a grant made there."""

    __slots__ = ("give_back", "line")

    def __init__(self, line: WaitQueue, give_back: Callable[[Any], None] | None) -> None:
        self.line = line
        self.give_back = give_back


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

    @property
    def parked(self) -> deque[Waiter]:
        """Read-only outside this module: the waiters in arrival order, cancelled ones included.

        Hot paths (Queue.put, get) test it to skip a queue nobody parked in.
        In pure Python it is replaced below by the ``_waiters`` slot under a
        second name, so reading it costs no Python call, as ``__bool__`` or
        this property would; compiled, the property is a native read already.
        """
        return self._waiters

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
        once_in_line: Callable[[], Any] | None = None,
    ) -> Any:
        """Wait at the back of the queue until granted; return the grant.

        Returns ``TIMED_OUT`` when ``timeout`` passes first.  ``value`` is
        stored on the waiter for the granting side to read (an item to put).
        ``once_in_line`` is called once the task is in line, before it parks:
        to look again for what a grant made just before would have given
        (a true result ends the wait at once and is returned), or to release
        what must be released only once a grant can no longer be missed.
        """
        w = Waiter(hub, what)
        w.value = value
        self._waiters.append(w)
        if once_in_line is not None:
            try:
                early = once_in_line()
            except BaseException:
                self._left(w, give_back)
                raise
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
        """``w`` leaves without a grant it used; give back any it was made."""
        # It may leave before it ever parked (once_in_line): it is no longer live.
        w.greenlet = None
        moved = w.value
        if type(moved) is _Moved:
            # Moved (by its own thread, so this read is safe): it is in that line now.
            moved.line._leave_line(w, moved.give_back)
        else:
            self._leave_line(w, give_back)

    def _leave_line(self, w: Waiter, give_back: Callable[[Any], None] | None) -> None:
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
        w.state.wake(w, value)
        return w

    def _grant_across_threads(self, value: Any) -> Waiter | None:
        try:
            w = self._waiters.popleft()
        except IndexError:
            return None
        # Taken out of the deque, it is ours: even a waiter that is leaving
        # right now finds itself gone and gives the grant back.
        w.granted = True
        if w.state.thread_ident == _get_ident():
            w.state.wake(w, value)
        else:
            w.hub.wake_threadsafe(w, value)
        return w

    @staticmethod
    def wake(w: Waiter, value: Any) -> None:
        """Wake ``w``, taken from a line, from whichever OS thread this runs on."""
        if w.state.thread_ident == _get_ident():
            w.state.wake(w, value)
        else:
            w.hub.wake_threadsafe(w, value)

    def take(self) -> Waiter | None:
        """Take the first live waiter out of the line without waking it; None if none.

        The caller then wakes it (``hub.wake``) or moves it (``move_to``).
        """
        if self._threads is not None:
            try:
                w = self._waiters.popleft()
            except IndexError:
                return None
        else:
            first = self.first()
            if first is None:
                return None
            w = self._waiters.popleft()
        w.granted = True
        return w

    def move_to(self, w: Waiter, line: WaitQueue, give_back: Callable[[Any], None] | None) -> None:
        """Put ``w``, taken from this line and still parked, at the back of ``line``.

        A grant from ``line`` then wakes it, however long that takes: the
        deadline of its wait here is dropped (a notified condition waiter
        waits for the lock without one).  If it leaves first (a kill), it
        leaves ``line``, and a grant ``line`` made to it goes to
        ``give_back``.  Call it on ``w``'s own thread: ``w`` records where
        it went.
        """
        if w.timer is not None:
            w.timer.cancel()
        w.value = _Moved(line, give_back)
        w.granted = False
        line._waiters.append(w)

    def grant_moved(self, w: Waiter, line: WaitQueue, give_back: Callable[[Any], None] | None) -> None:
        """``move_to(w, line, give_back)`` and, ``line`` being empty, its grant to ``w``, in one step.

        For a holder of what ``line`` guards handing it straight to ``w``
        (taken from this line, still parked): ``w`` is woken with True as a
        grant from ``line`` wakes it, and if it leaves before it runs, the
        grant goes to ``give_back`` as ``line``'s would.  Call it on ``w``'s
        own thread.
        """
        if w.timer is not None:
            w.timer.cancel()
        w.value = _Moved(line, give_back)
        w.granted = True
        w.state.wake(w, True)

    def grant_all(self, value: Any = True) -> int:
        """Wake every live waiter with ``value``; return how many."""
        n = 0
        if self._threads is not None:
            # One at a time: the deque may gain waiters from other threads meanwhile.
            # Looking before each grant spares the IndexError that would end the loop.
            while self._waiters and self._grant_across_threads(value) is not None:
                n += 1
            return n
        waiters = self._waiters
        if not waiters:
            return 0
        self._waiters = _new_deque()
        self._stale = 0
        for w in waiters:
            if w.greenlet is not None and not w.granted:
                w.granted = True
                w.value = value
                w.state.wake(w, value)
                n += 1
        return n

    def live(self) -> list[Waiter]:
        """The live waiters, front first."""
        if self._threads is not None:
            return list(self._waiters)
        return [w for w in self._waiters if w.greenlet is not None and not w.granted]


try:
    # The slot's own descriptor: a plain attribute read.  A compiled class takes no new attributes.
    setattr(WaitQueue, "parked", vars(WaitQueue)["_waiters"])  # noqa: B010
except (AttributeError, TypeError):
    pass
