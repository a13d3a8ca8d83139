"""Cooperative twin of ``queue``: ``SimpleQueue`` parks the calling task, not the OS thread.

``Queue``, ``LifoQueue`` and ``PriorityQueue`` are Python built on
``threading.Lock`` and ``Condition``, so they are cooperative once the thread
area is patched.  ``SimpleQueue`` is a C type with its own wait, replaced
here; ``concurrent.futures``' thread pool hands its work through one.
"""

from __future__ import annotations

import types
from collections import deque
from queue import Empty
from typing import Any

from corun._waiter import TIMED_OUT, Waiter
from corun.hub import get_hub

from .thread import _wait, _wake

__all__ = ["SimpleQueue"]

__target__ = "queue"
__implements__ = ["SimpleQueue"]


class SimpleQueue:
    """An unbounded FIFO queue; ``get`` parks the task until an item arrives.

    ``put`` never blocks and takes no lock, so like the C type it may be
    called from a finalizer or a signal handler.  It is also safe between
    OS threads: a getter in another thread is woken through its own hub.
    """

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._getters: deque[Waiter] = deque()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; ``block`` and ``timeout`` exist for compatibility with ``Queue.put``."""
        self._items.append(item)
        if self._getters:
            self._wake_one()

    def put_nowait(self, item: Any) -> None:
        """Add ``item``; the same as ``put(item)``."""
        self.put(item)

    def _wake_one(self) -> None:
        try:
            waiter = self._getters.popleft()
        except IndexError:
            return
        _wake(waiter, None)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item, waiting for one if ``block``.

        Raises:
            Empty: nothing arrived (at once without ``block``; within ``timeout`` otherwise).
            ValueError: ``timeout`` is negative.
        """
        try:
            return self._items.popleft()
        except IndexError:
            pass
        if not block:
            raise Empty
        if timeout is not None:
            if timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            deadline = get_hub().clock() + timeout
        hub = get_hub()
        while True:
            waiter = Waiter(hub, self)
            self._getters.append(waiter)
            # A put that ran before the append found no getter to wake.
            try:
                item = self._items.popleft()
            except IndexError:
                pass
            else:
                self._forget(waiter)
                return item
            remaining = None if timeout is None else max(0.0, deadline - hub.clock())
            try:
                value = _wait(waiter, remaining)
            except BaseException:
                self._forget(waiter)
                raise
            if value is TIMED_OUT:
                self._forget(waiter)
                try:
                    return self._items.popleft()
                except IndexError:
                    raise Empty from None
            try:
                return self._items.popleft()
            except IndexError:
                continue  # another getter took it first; wait again

    def _forget(self, waiter: Waiter) -> None:
        """Withdraw ``waiter``; if a put woke it already, pass that wake-up on."""
        try:
            self._getters.remove(waiter)
        except ValueError:
            if self._items and self._getters:
                self._wake_one()

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
