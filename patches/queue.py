"""Cooperative twin of ``queue``: ``SimpleQueue`` parks the calling task, not the OS thread.

``Queue``, ``LifoQueue`` and ``PriorityQueue`` are Python built on
``threading.Lock`` and ``Condition``, so they are cooperative once the thread
area is patched.  ``SimpleQueue`` is a C type with its own wait, replaced
here; ``concurrent.futures``' thread pool hands its work through one.

``Queue.put`` and ``Queue.get`` (which ``LifoQueue`` and ``PriorityQueue``
inherit) are replaced on the stdlib's own class by the same steps with the
``with`` blocks and waits on the conditions written out against corun's
lock, compiled with the core (``_threadsync``): the same lock taken in the
same order, the same ``_put``/``_get``/``_qsize`` hooks called, the same
conditions notified; only fewer Python calls.  The class stays the stdlib's, so subclasses, ``isinstance`` and
queues made before patching are unchanged; a queue whose mutex is not a
lock of ours, and a timed wait, take the stdlib's code.
"""

from __future__ import annotations

import heapq
import queue as _stdlib
import sys
import types
from collections import deque
from queue import Empty, Full
from typing import Any

from greenlet import getcurrent

from corun import _threadsync
from corun._importhook import find_then
from corun._waiter import TIMED_OUT
from corun._waitqueue import WaitQueue
from corun.hub import get_hub
from corun.hub import sleep as hub_sleep

from .thread import LockType, _other_threads_may_wake

__all__ = ["SimpleQueue"]

__target__ = "queue"
__implements__ = ["SimpleQueue"]


class SimpleQueue:
    """An unbounded FIFO queue; ``get`` parks the task until an item arrives.

    ``put`` never blocks and takes no lock, so like the C type it may be
    called from a finalizer or a signal handler.  It is also safe between
    OS threads: the getters are a ``WaitQueue`` that works across threads,
    and ``put`` grants the first of them a turn to look.
    """

    # What ``get`` raises: the ``Empty`` of the ``_queue`` module this class was installed in.
    _Empty: type[Exception] = Empty

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._getters = WaitQueue(_other_threads_may_wake)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; ``block`` and ``timeout`` exist for compatibility with ``Queue.put``."""
        self._items.append(item)
        if self._getters._waiters:  # the deque itself: no Python-level __bool__ here
            self._getters.grant(True)

    def put_nowait(self, item: Any) -> None:
        """Add ``item``; the same as ``put(item)``."""
        self.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item, waiting for one if ``block``.

        Raises:
            Empty: nothing arrived (at once without ``block``; within ``timeout`` otherwise).
            ValueError: ``timeout`` is negative.
        """
        if block and timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if block and self._items:
            # A get that was willing to wait is a switch point even when an
            # item is ready: a worker fed by its own puts (a task that
            # resubmits itself to an executor) would otherwise never let
            # another task run.
            hub = get_hub()
            if getcurrent() is not hub:
                hub_sleep(0)
        items = self._items
        if items:  # looked at first: an IndexError on every wait cost a tenth of a hand-off
            try:
                return items.popleft()
            except IndexError:
                pass  # another OS thread took it meanwhile
        if not block:
            raise self._Empty
        hub = get_hub()
        if timeout is not None:
            deadline = hub.clock() + timeout
        while True:
            remaining = None if timeout is None else max(0.0, deadline - hub.clock())
            # Once in line, look again: a put that ran before found no getter.
            turn = self._getters.park(hub, self, remaining, self._pass_turn_on, once_in_line=self._has_items)
            try:
                return self._items.popleft()
            except IndexError:
                if turn is TIMED_OUT:
                    raise self._Empty from None
                # Another getter took it first: wait again.

    def _has_items(self) -> bool:
        return bool(self._items)

    def _pass_turn_on(self, _turn: Any) -> None:
        # Granted a turn as its wait ended another way: the next getter looks.
        if self._items:
            self._getters.grant(True)

    def get_nowait(self) -> Any:
        """Remove and return the oldest item.

        Raises:
            Empty: the queue is empty.
        """
        return self.get(False)

    def empty(self) -> bool:
        """Whether the queue holds no item (may change as soon as it returns)."""
        return not self._items

    def qsize(self) -> int:
        """How many items the queue holds."""
        return len(self._items)

    __class_getitem__: Any = classmethod(types.GenericAlias)


# The storage hooks of the stdlib's three queues, by their ``_get``, and the C calls that
# do the same on ``self.queue``: a queue whose class keeps one of these sets, holding the
# storage they make, is served without a Python call per hook.  (qsize, put, storage
# type, add, take); the last two take ``self.queue``.  Keyed by one function rather than
# by the tuple of three, so that no tuple is built on every call.
_DIRECT: dict[Any, tuple[Any, Any, type, Any, Any]] = {
    _stdlib.Queue._get: (_stdlib.Queue._qsize, _stdlib.Queue._put, deque, deque.append, deque.popleft),
    _stdlib.LifoQueue._get: (_stdlib.LifoQueue._qsize, _stdlib.LifoQueue._put, list, list.append, list.pop),
    _stdlib.PriorityQueue._get: (
        _stdlib.PriorityQueue._qsize,
        _stdlib.PriorityQueue._put,
        list,
        heapq.heappush,
        heapq.heappop,
    ),
}

# The steps run compiled with the core; they fall back on the stdlib's methods.
_threadsync.queues.configure(
    LockType,
    _stdlib.Queue.put,
    _stdlib.Queue.get,
    _DIRECT,
    # 3.13 added shutdown(): puts and gets check ``is_shutdown`` where the stdlib's do.
    getattr(_stdlib, "ShutDown", None),
    Empty,
    Full,
)
_queue_put = _threadsync.queue_put
_queue_get = _threadsync.queue_get


def _put(self: Any, item: Any, block: bool = True, timeout: float | None = None) -> None:
    """``queue.Queue.put``: the stdlib's steps, calling the thread twins' lock and conditions directly."""
    _queue_put(self, item, block, timeout)


def _get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
    """``queue.Queue.get``: the stdlib's steps, calling the thread twins' lock and conditions directly."""
    return _queue_get(self, block, timeout)


class _CooperativeQueueFinder:
    """Gives a fresh import of ``_queue`` (one made after patching) the cooperative ``SimpleQueue``.

    ``queue`` takes ``SimpleQueue`` from the C module ``_queue``; code that
    re-imports both (``test.support.import_fresh_module``, module reloaders)
    would otherwise get the C type back, whose ``get`` blocks the OS thread.
    """

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        """The spec the other finders give ``_queue``, which then gets the cooperative class; else None."""
        if name != "_queue":
            return None
        return find_then(cls, name, path, target, _give_cooperative_simple_queue)


def _give_cooperative_simple_queue(module: Any) -> None:
    # A fresh C module has its own Empty, which its users catch.
    module.SimpleQueue = type("SimpleQueue", (SimpleQueue,), {"_Empty": module.Empty, "__module__": __name__})


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """Put the cooperative ``SimpleQueue`` in ``_queue`` and in its fresh imports (for ``monkey`` to set)."""
    import _queue  # noqa: F401 - imported so that its attribute can be replaced

    changes: list[tuple[str, str, Any]] = [
        ("_queue", "SimpleQueue", SimpleQueue),
        ("queue", "Queue.put", _put),
        ("queue", "Queue.get", _get),
    ]
    if _CooperativeQueueFinder not in sys.meta_path:
        # A new list rather than an insert, so that the original stays as it was.
        changes.append(("sys", "meta_path", [_CooperativeQueueFinder, *sys.meta_path]))
    return changes
