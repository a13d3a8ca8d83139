"""Queues between tasks: Queue, LifoQueue, PriorityQueue, JoinableQueue, Channel.

Same names and methods as gevent's queues, same semantics as the stdlib's
``queue.Queue`` (and its ``Empty``/``Full`` exceptions, so ``except
queue.Empty`` catches ours).  Two fair ``WaitQueue`` lines:

- getters wait only while the queue is empty, and ``put`` hands its item
  straight to the first of them; if that task is cancelled before it runs,
  the item goes to the next getter or back to the front of the queue;
- putters wait only while the queue is full, each holding its item; a ``get``
  that frees space admits the first putter's item at once, in arrival order.

So an item is never lost and never overtaken by a later ``put``.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from queue import Empty, Full
from typing import Any, Generic, TypeVar

from ._hubbound import HubBound
from ._mypyc import mypyc_attr
from ._waiter import TIMED_OUT
from ._waitqueue import WaitQueue

__all__ = [
    "Channel",
    "ChannelStatistics",
    "Empty",
    "Full",
    "JoinableQueue",
    "LifoQueue",
    "PriorityQueue",
    "Queue",
    "QueueStatistics",
]

T = TypeVar("T")


@dataclass(frozen=True)
class QueueStatistics:
    """A snapshot of a queue: its items and the tasks waiting on it."""

    qsize: int
    maxsize: int | None
    unfinished_tasks: int
    getters: int
    putters: int
    joiners: int

    @property
    def waiters(self) -> int:
        """Every task blocked on the queue: getters, putters and joiners."""
        return self.getters + self.putters + self.joiners


@dataclass(frozen=True)
class ChannelStatistics:
    """A snapshot of a Channel: the tasks waiting on each side."""

    getters: int
    putters: int

    @property
    def waiters(self) -> int:
        """Every task blocked on the channel."""
        return self.getters + self.putters


def _wait_time(timeout: float | None) -> float | None:
    """Validate a stdlib-style timeout before waiting; 0 means do not wait."""
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


@mypyc_attr(allow_interpreted_subclasses=True)
class Queue(HubBound, Generic[T]):
    """A FIFO queue of items between tasks; bounded if ``maxsize`` is a positive number.

    ``Queue[int]`` works at run time.  Iterating gets items until one of them
    is ``StopIteration``.
    """

    def __init__(self, maxsize: int | None = None, items: Iterable[T] = ()) -> None:
        self._maxsize = maxsize if maxsize is not None and maxsize > 0 else None
        self.queue: Any = self._make_items(items)
        self.unfinished_tasks = self._qsize()
        self._getters = WaitQueue()
        self._putters = WaitQueue()
        self._joiners = WaitQueue()
        # Plain FIFO storage calls the deque directly: no Python frame per item.
        if type(self)._put_item is Queue._put_item:
            self._put_item = self.queue.append  # type: ignore[method-assign]
        if type(self)._get_item is Queue._get_item:
            self._get_item = self.queue.popleft  # type: ignore[method-assign]

    # -- storage order: what LifoQueue and PriorityQueue change ----------------

    def _make_items(self, items: Iterable[T]) -> Any:
        return deque(items)

    def _qsize(self) -> int:
        return len(self.queue)

    def _put_item(self, item: T) -> None:
        self.queue.append(item)

    def _get_item(self) -> T:
        return self.queue.popleft()

    def _peek_item(self) -> T:
        return self.queue[0]

    def _put_front(self, item: T) -> None:
        """Put ``item`` where the next ``get`` takes it from."""
        self.queue.appendleft(item)

    # -- state ---------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} qsize={self._qsize()} maxsize={self._maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)} at {id(self):#x}>"
        )

    @property
    def maxsize(self) -> int | None:
        """The most items it holds before ``put`` blocks; None for no limit."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int | None) -> None:
        self._maxsize = value if value is not None and value > 0 else None
        if self._putters:
            self._admit_putters()

    def qsize(self) -> int:
        """How many items it holds now."""
        return self._qsize()

    def __len__(self) -> int:
        return self._qsize()

    def __bool__(self) -> bool:
        # A queue is an object, not a container to test for emptiness: an
        # empty queue is still true (``queue or make_queue()`` must not replace it).
        return True

    def empty(self) -> bool:
        """True if it holds no item now."""
        return self._qsize() == 0

    def full(self) -> bool:
        """True if ``put`` would block now."""
        return self._maxsize is not None and self._qsize() >= self._maxsize

    def statistics(self) -> QueueStatistics:
        """Items, unfinished tasks, and how many tasks wait to get, put and join."""
        return QueueStatistics(
            self._qsize(),
            self._maxsize,
            self.unfinished_tasks,
            len(self._getters),
            len(self._putters),
            len(self._joiners),
        )

    # -- put -----------------------------------------------------------------

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``, waiting for space while the queue is full.

        Raises:
            Full: no space (``block=False``) or none within ``timeout``.
            ValueError: a negative timeout.
        """
        # (A non-empty waiter deque may hold only cancelled waiters; grant
        # sorts that out. Testing the deque avoids a Python-level __bool__.)
        if self._getters.parked:
            # Only when the queue is empty: the item goes straight to a getter.
            self._own_hub()
            if self._getters.grant(item) is not None:
                self.unfinished_tasks += 1
                return
        if self._maxsize is None or len(self.queue) < self._maxsize:
            self._put_item(item)
            self.unfinished_tasks += 1
            return
        if not block or _wait_time(timeout) == 0:
            raise Full
        hub = self._own_hub()
        admitted: list[Any] = []
        if self._putters.park(hub, self, timeout, admitted.append, item) is TIMED_OUT and not admitted:
            raise Full

    def put_nowait(self, item: T) -> None:
        """``put(item, block=False)``."""
        self.put(item, False)

    def _admit_putters(self) -> None:
        # Space was freed: admit waiting putters' items in arrival order.
        self._own_hub()
        while self._maxsize is None or self._qsize() < self._maxsize:
            w = self._putters.first()
            if w is None:
                return
            self._put_item(w.value)
            self.unfinished_tasks += 1
            self._putters.grant(True)

    # -- get -----------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the next item, waiting for one while the queue is empty.

        Raises:
            Empty: no item (``block=False``) or none within ``timeout``.
            ValueError: a negative timeout.
        """
        if self.queue:
            item = self._get_item()
            if self._putters.parked:
                self._admit_putters()
            return item
        return self._wait_for_item(block, timeout)

    def get_nowait(self) -> T:
        """``get(block=False)``."""
        return self.get(False)

    def peek(self, block: bool = True, timeout: float | None = None) -> T:
        """Return the next item without removing it, waiting for one if needed.

        Raises:
            Empty: no item (``block=False``) or none within ``timeout``.
        """
        if self._qsize():
            return self._peek_item()
        item = self._wait_for_item(block, timeout)
        # We were handed the item as if we were a getter: put it back in turn.
        self._give_back(item)
        return item

    def peek_nowait(self) -> T:
        """``peek(block=False)``."""
        return self.peek(False)

    def _wait_for_item(self, block: bool, timeout: float | None) -> Any:
        if not block or _wait_time(timeout) == 0:
            raise Empty
        hub = self._own_hub()
        result = self._getters.park(hub, self, timeout, self._give_back)
        if result is TIMED_OUT:
            raise Empty
        return result

    def _give_back(self, item: Any) -> None:
        # An item handed to a task that then left: the next getter, or the front.
        if self._getters:
            self._own_hub()
            if self._getters.grant(item) is not None:
                return
        self._put_front(item)

    # -- task accounting -----------------------------------------------------

    def task_done(self) -> None:
        """Say that one item taken from the queue was fully processed.

        Raises:
            ValueError: called more times than there were items put.
        """
        if self.unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished_tasks -= 1
        if self.unfinished_tasks == 0 and self._joiners:
            self._own_hub()
            self._joiners.grant_all(True)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put was marked done; False if ``timeout`` passed first."""
        if self.unfinished_tasks == 0:
            return True
        if timeout is not None and timeout <= 0:
            return False
        hub = self._own_hub()
        result = self._joiners.park(hub, self, timeout)
        return result is not TIMED_OUT or self.unfinished_tasks == 0

    # -- iteration -----------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self.get()
        if item is StopIteration:
            raise StopIteration
        return item


@mypyc_attr(allow_interpreted_subclasses=True)
class LifoQueue(Queue[T]):
    """A queue that returns the most recently added item first."""

    def _make_items(self, items: Iterable[T]) -> Any:
        return list(items)

    def _get_item(self) -> T:
        return self.queue.pop()

    def _peek_item(self) -> T:
        return self.queue[-1]

    def _put_front(self, item: T) -> None:
        self.queue.append(item)


@mypyc_attr(allow_interpreted_subclasses=True)
class PriorityQueue(Queue[T]):
    """A queue that returns the smallest item first (e.g. ``(priority, data)`` tuples)."""

    def _make_items(self, items: Iterable[T]) -> Any:
        heap: list[Any] = list(items)
        heapq.heapify(heap)
        return heap

    def _put_item(self, item: T) -> None:
        heapq.heappush(self.queue, item)

    def _get_item(self) -> T:
        return heapq.heappop(self.queue)

    def _put_front(self, item: T) -> None:
        # The smallest item is the front; a returned item finds its place again.
        heapq.heappush(self.queue, item)


@mypyc_attr(allow_interpreted_subclasses=True)
class JoinableQueue(Queue[T]):
    """A Queue, by its gevent name (every Queue has ``task_done`` and ``join``)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class Channel(HubBound, Generic[T]):
    """A rendezvous: ``put`` waits until a getter takes the item; nothing is stored."""

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize != 1:
            raise ValueError("a Channel holds no items; its maxsize is always 1")
        self._getters = WaitQueue()
        self._putters = WaitQueue()
        # Items handed to getters that were cancelled before they ran; the
        # putters have returned already, so these go out first.
        self._returned: deque[T] = deque()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} getters={len(self._getters)} "
            f"putters={len(self._putters)} at {id(self):#x}>"
        )

    @property
    def balance(self) -> int:
        """Waiting putters minus waiting getters."""
        return len(self._putters) - len(self._getters)

    def qsize(self) -> int:
        """0: a channel holds no items (except ones a cancelled getter gave back)."""
        return len(self._returned)

    def empty(self) -> bool:
        """True: a channel holds no items (except ones a cancelled getter gave back)."""
        return not self._returned

    def full(self) -> bool:
        """True: a ``put`` always waits for a getter."""
        return True

    def statistics(self) -> ChannelStatistics:
        """How many tasks wait to get and to put."""
        return ChannelStatistics(len(self._getters), len(self._putters))

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Hand ``item`` to a getter, waiting for one to come.

        Raises:
            Full: no getter waits (``block=False``) or none came within ``timeout``.
            ValueError: a negative timeout.
        """
        if self._getters:
            self._own_hub()
            if self._getters.grant(item) is not None:
                return
        if not block or _wait_time(timeout) == 0:
            raise Full
        hub = self._own_hub()
        taken: list[Any] = []
        if self._putters.park(hub, self, timeout, taken.append, item) is TIMED_OUT and not taken:
            raise Full

    def put_nowait(self, item: T) -> None:
        """Hand ``item`` to a waiting getter, or raise ``Full``."""
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Take an item from a putter, waiting for one to come.

        Raises:
            Empty: no putter waits (``block=False``) or none came within ``timeout``.
            ValueError: a negative timeout.
        """
        if self._returned:
            return self._returned.popleft()
        if self._putters:
            self._own_hub()
            w = self._putters.first()
            if w is not None:
                item: T = w.value
                self._putters.grant(True)
                return item
        if not block or _wait_time(timeout) == 0:
            raise Empty
        hub = self._own_hub()
        result = self._getters.park(hub, self, timeout, self._give_back)
        if result is TIMED_OUT:
            raise Empty
        return result

    def get_nowait(self) -> T:
        """Take an item from a waiting putter, or raise ``Empty``."""
        return self.get(False)

    def _give_back(self, item: T) -> None:
        if self._getters:
            self._own_hub()
            if self._getters.grant(item) is not None:
                return
        self._returned.appendleft(item)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self.get()
        if item is StopIteration:
            raise StopIteration
        return item
