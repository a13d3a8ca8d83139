"""Sets of tasks: ``Group`` tracks them, ``Pool`` also caps how many run at once.

A member leaves its group on its own when it finishes (a rawlink), so
``join`` only has to wait for the group to become empty.  A ``Pool`` counts
its free slots as ``size - members - reserved``: a slot handed to a task
waiting in ``spawn`` is reserved for it until it runs, so nobody who arrives
later can take it first, and it is given back if that task is cancelled.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from greenlet import getcurrent

from . import _originals
from ._hubbound import HubBound
from ._waiter import TIMED_OUT, Waiter
from ._waitqueue import WaitQueue
from .greenlet import Greenlet, GreenletExit, joinall, killall

__all__ = ["Group", "Pool", "PoolFull", "PoolStatistics"]

T = TypeVar("T")


class PoolFull(Exception):
    """``Pool.add`` found no free slot (without blocking, or within its timeout)."""


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of a Group or Pool."""

    size: int | None
    members: int
    free: int
    waiting: int


class Group(HubBound):
    """A set of tasks that can be joined, killed and mapped over together.

    Use a group from one thread only: its members are tasks of that thread's hub.
    """

    greenlet_class: type[Greenlet[Any]] = Greenlet

    def __init__(self, greenlets: Iterable[Greenlet[Any]] = ()) -> None:
        # A dict rather than a set: iteration follows the order of arrival.
        self._members: dict[Greenlet[Any], None] = {}
        self._empty_waiters = WaitQueue()
        self._failure_waiters = WaitQueue()
        for g in greenlets:
            self.add(g)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} members={len(self._members)} at {id(self):#x}>"

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __iter__(self) -> Iterator[Greenlet[Any]]:
        # A snapshot: members leave as they finish, while the caller iterates.
        return iter(list(self._members))

    @property
    def greenlets(self) -> set[Greenlet[Any]]:
        """The members now (a copy)."""
        return set(self._members)

    def statistics(self) -> PoolStatistics:
        """Members, free slots and tasks waiting for one."""
        return PoolStatistics(None, len(self._members), self.free_count(), 0)

    # -- membership -----------------------------------------------------------

    def add(self, greenlet: Greenlet[Any]) -> None:
        """Make ``greenlet`` a member until it finishes."""
        self._own_hub()
        if greenlet in self._members:
            return
        self._members[greenlet] = None
        greenlet.rawlink(self._member_done)

    def discard(self, greenlet: Greenlet[Any]) -> None:
        """Remove ``greenlet`` from the group (it keeps running)."""
        if greenlet in self._members:
            greenlet.unlink(self._member_done)
            self._remove(greenlet)

    def _member_done(self, greenlet: Greenlet[Any]) -> None:
        # From the hub, when a member finishes.  Joiners that raise on error
        # hear of the failure before the group may become empty.
        if greenlet.exception is not None:
            self._failure_waiters.grant_all(greenlet)
        self._remove(greenlet)

    def _remove(self, greenlet: Greenlet[Any]) -> None:
        self._members.pop(greenlet, None)
        if not self._members:
            self._empty_waiters.grant_all(None)
            self._failure_waiters.grant_all(None)

    def spawn(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
        """Start ``func(*args, **kwargs)`` in a new task that is a member."""
        g: Greenlet[T] = self.greenlet_class(func, *args, **kwargs)
        self.start(g)
        return g

    def start(self, greenlet: Greenlet[Any]) -> None:
        """Add ``greenlet`` and start it."""
        self.add(greenlet)
        greenlet.start()

    # -- capacity (a Group has no limit) ----------------------------------------

    def free_count(self) -> int:
        """How many more members can start now without waiting (1 when there is no limit)."""
        # 1, not a huge number: a loop that spawns free_count() tasks at a
        # time keeps going instead of materialising an endless input at once.
        return 1

    def full(self) -> bool:
        """True if ``spawn`` would have to wait for a member to finish."""
        return False

    def wait_available(self, timeout: float | None = None) -> int:
        """Wait until a member can start without waiting; return ``free_count()``."""
        return self.free_count()

    # -- waiting and killing ----------------------------------------------------

    def join(self, timeout: float | None = None, raise_error: bool = False) -> bool:
        """Wait until every member has finished; False if ``timeout`` passed first.

        With ``raise_error``, a member that fails (has failed, or fails while
        this waits) makes ``join`` raise its exception at once.
        """
        hub = self._own_hub()
        deadline = None if timeout is None else hub.clock() + timeout
        if raise_error:
            for g in list(self._members):
                _raise_if_failed(g)
        waiters = self._failure_waiters if raise_error else self._empty_waiters
        while self._members:
            left = None if deadline is None else deadline - hub.clock()
            if left is not None and left <= 0:
                return False
            got = waiters.park(hub, self, left)
            if isinstance(got, Greenlet):
                _raise_if_failed(got)
        return True

    def kill(
        self,
        exception: type[BaseException] | BaseException = GreenletExit,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Kill every member except the calling task (see ``Greenlet.kill``).

        With ``block``, waits until they have finished, killing any that
        were added meanwhile, or until ``timeout`` passed.
        """
        hub = self._own_hub()
        current = getcurrent()
        deadline = None if timeout is None else hub.clock() + timeout
        while True:
            victims = [g for g in self._members if g is not current and not g.dead]
            if not victims:
                break
            killall(victims, exception, block=False)
            if not block:
                break
            left = None if deadline is None else deadline - hub.clock()
            if left is not None and left <= 0:
                break
            joinall(victims, timeout=left)
        self._drop_dead(list(self._members))

    def killone(
        self,
        greenlet: Greenlet[Any],
        exception: type[BaseException] | BaseException = GreenletExit,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Kill one member (nothing happens if it is not a member)."""
        if greenlet in self._members:
            greenlet.kill(exception, block=block, timeout=timeout)
            self._drop_dead([greenlet])

    def _drop_dead(self, greenlets: Iterable[Greenlet[Any]]) -> None:
        # A finished member leaves when its links run, on a later pass of the
        # hub; after a kill, make len() and free_count() right straight away.
        for g in greenlets:
            if g.dead and g in self._members:
                g.unlink(self._member_done)
                self._member_done(g)

    # -- calling functions --------------------------------------------------------

    def apply(
        self, func: Callable[..., T], args: Iterable[Any] | None = None, kwds: dict[str, Any] | None = None
    ) -> T:
        """Call ``func(*args, **kwds)`` in a member task and return its result.

        From a task that is already a member, calls it directly: waiting for
        a slot that the caller itself holds would never end.
        """
        args = () if args is None else tuple(args)
        kwds = {} if kwds is None else kwds
        if getcurrent() in self._members:
            return func(*args, **kwds)
        return self.spawn(func, *args, **kwds).get()

    def apply_async(
        self,
        func: Callable[..., T],
        args: Iterable[Any] | None = None,
        kwds: dict[str, Any] | None = None,
        callback: Callable[[T], Any] | None = None,
    ) -> Greenlet[T]:
        """Start ``func(*args, **kwds)`` in a task; ``callback(result)`` runs if it succeeds."""
        args = () if args is None else tuple(args)
        kwds = {} if kwds is None else kwds
        if getcurrent() in self._members and self.full():
            # A member waiting for a slot in its own full pool could wait for ever.
            g: Greenlet[T] = self.greenlet_class.spawn(func, *args, **kwds)
        else:
            g = self.spawn(func, *args, **kwds)
        if callback is not None:
            g.link_value(_pass_value(callback))
        return g

    def map(self, func: Callable[..., T], iterable: Iterable[Any]) -> list[T]:
        """``[func(x) for x in iterable]``, the calls made concurrently in member tasks."""
        return list(self.imap(func, iterable))

    def map_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Any],
        callback: Callable[[list[T]], Any] | None = None,
    ) -> Greenlet[list[T]]:
        """``map`` in a task of its own (not a member); ``callback(results)`` if it succeeds."""
        g: Greenlet[list[T]] = self.greenlet_class.spawn(self.map, func, iterable)
        if callback is not None:
            g.link_value(_pass_value(callback))
        return g

    def imap(
        self, func: Callable[..., T], *iterables: Iterable[Any], maxsize: int | None = None
    ) -> Iterator[T]:
        """Yield ``func(*args)`` for each ``args`` of ``zip(*iterables)``, in input order.

        The calls run concurrently in member tasks, started lazily as the
        consumer iterates and as slots free up.  ``maxsize`` caps the calls
        started and not yet consumed.  A failing call raises in the consumer;
        that, or closing the iterator early, kills the calls it started.
        """
        return self._imap(func, iterables, maxsize, ordered=True)

    def imap_unordered(
        self, func: Callable[..., T], *iterables: Iterable[Any], maxsize: int | None = None
    ) -> Iterator[T]:
        """Like ``imap``, but yield each result as soon as its call finishes."""
        return self._imap(func, iterables, maxsize, ordered=False)

    def _imap(
        self,
        func: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        maxsize: int | None,
        ordered: bool,
    ) -> Iterator[T]:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"imap maxsize must be at least 1 (or None for no limit), not {maxsize}")
        return self._imap_gen(
            func, zip(*iterables, strict=False), sys.maxsize if maxsize is None else maxsize, ordered
        )

    def _imap_gen(
        self, func: Callable[..., T], args_iter: Iterator[tuple[Any, ...]], window: int, ordered: bool
    ) -> Iterator[T]:
        hub = self._own_hub()
        started: deque[Greenlet[T]] = deque()  # in input order, not yet yielded
        finished: deque[Greenlet[T]] = deque()  # in completion order (unordered only)
        parked: list[Waiter | None] = [None]

        def on_done(g: Greenlet[T]) -> None:
            if not ordered:
                finished.append(g)
            w = parked[0]
            if w is not None:
                parked[0] = None
                hub.wake(w, None)

        exhausted = False
        try:
            while True:
                # Start calls while there is input, room in the window and a
                # free slot.  With nothing started yet, wait in spawn for a slot
                # held by someone else; otherwise wait for our own calls.
                while not exhausted and len(started) < window and not (started and self.full()):
                    args = next(args_iter, None)
                    if args is None:
                        exhausted = True
                        break
                    g = self.spawn(func, *args)
                    g.rawlink(on_done)
                    started.append(g)
                if not started:
                    return
                done: Greenlet[T] | None = None
                if ordered:
                    if started[0].dead:
                        done = started.popleft()
                elif finished:
                    done = finished.popleft()
                    started.remove(done)
                if done is None:
                    w = parked[0] = Waiter(hub, f"{self!r} imap: the next result")
                    try:
                        w.get()
                    finally:
                        parked[0] = None
                    continue
                _raise_if_failed(done)
                yield done.value  # type: ignore[misc]
        finally:
            for g in started:
                g.unlink(on_done)
            alive = [g for g in started if not g.dead]
            # A generator may be collected anywhere: on a destroyed hub its
            # tasks will never run again, and from the hub itself (or the
            # hub's own death) it cannot wait for them to die.
            if alive and not hub.destroyed and hub.thread_ident == _originals.get_ident():
                killall(alive, block=getcurrent() is not hub)
                self._drop_dead(alive)


class Pool(Group):
    """A Group that runs at most ``size`` members at once; ``spawn`` waits for a free slot."""

    def __init__(self, size: int | None = None, greenlet_class: type[Greenlet[Any]] | None = None) -> None:
        _check_size(size)
        self.size = size
        if greenlet_class is not None:
            self.greenlet_class = greenlet_class
        self._slot_waiters = WaitQueue()
        # Slots handed to waiting tasks that have not become members yet.
        self._reserved = 0
        super().__init__()

    def __repr__(self) -> str:
        return (
            f"<Pool size={self.size} members={len(self._members)} "
            f"waiting={len(self._slot_waiters)} at {id(self):#x}>"
        )

    def statistics(self) -> PoolStatistics:
        """Members, free slots and tasks waiting for one."""
        return PoolStatistics(self.size, len(self._members), self.free_count(), len(self._slot_waiters))

    def resize(self, size: int | None) -> None:
        """Let ``size`` members run at once from now on.

        Growing hands the new slots to tasks waiting in ``spawn`` at once;
        shrinking never stops a member: the pool just starts no new one
        until fewer than ``size`` run.
        """
        _check_size(size)
        self.size = size
        self._hand_out_slots()

    def free_count(self) -> int:
        """How many more members can start now (1 when there is no limit)."""
        if self.size is None:
            return 1
        return max(0, self.size - len(self._members) - self._reserved)

    def full(self) -> bool:
        """True if ``spawn`` would have to wait for a member to finish."""
        return self.size is not None and self.free_count() == 0

    def wait_available(self, timeout: float | None = None) -> int:
        """Wait until a slot is free (without taking it); return ``free_count()``."""
        if self._take_slot(True, timeout):
            self._return_slot()
        return self.free_count()

    def add(self, greenlet: Greenlet[Any], blocking: bool = True, timeout: float | None = None) -> None:
        """Make ``greenlet`` a member, waiting for a free slot first.

        Raises:
            PoolFull: no slot became free (``blocking=False``, or within ``timeout``).
        """
        if greenlet in self._members:
            return
        if not self._take_slot(blocking, timeout):
            raise PoolFull(f"{self!r} has no free slot for {greenlet!r}")
        self._reserved -= 1
        super().add(greenlet)

    def _take_slot(self, blocking: bool, timeout: float | None) -> bool:
        """Reserve a slot for the calling task; False if none came in time."""
        hub = self._own_hub()
        if self.size is None or (not self._slot_waiters and self.free_count() > 0):
            self._reserved += 1
            return True
        if not blocking:
            return False
        got = self._slot_waiters.park(hub, self, timeout, give_back=self._return_slot)
        # A granted slot was reserved for us by _hand_out_slots.
        return got is not TIMED_OUT

    def _return_slot(self, _granted: Any = None) -> None:
        self._reserved -= 1
        self._hand_out_slots()

    def _hand_out_slots(self) -> None:
        while self.free_count() > 0 and self._slot_waiters.grant(True) is not None:
            self._reserved += 1

    def _remove(self, greenlet: Greenlet[Any]) -> None:
        if greenlet in self._members:
            super()._remove(greenlet)
            if self.size is not None:
                self._hand_out_slots()


def _check_size(size: int | None) -> None:
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"Pool size must be an int or None, not {type(size).__name__}")
        if size < 1:
            raise ValueError(f"Pool size must be at least 1 (or None for no limit), not {size}")


def _raise_if_failed(g: Greenlet[Any]) -> None:
    exc_info = g.exc_info
    if exc_info is not None:
        raise exc_info[1].with_traceback(exc_info[2])


def _pass_value(callback: Callable[[Any], Any]) -> Callable[[Greenlet[Any]], Any]:
    def call_with_value(source: Greenlet[Any]) -> Any:
        return callback(source.value)

    return call_with_value
