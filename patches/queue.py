"""Cooperative twin of ``queue``: ``SimpleQueue`` parks the calling task, not the OS thread.

``Queue``, ``LifoQueue`` and ``PriorityQueue`` are Python built on
``threading.Lock`` and ``Condition``, so they are cooperative once the thread
area is patched.  ``SimpleQueue`` is a C type with its own wait, replaced
here; ``concurrent.futures``' thread pool hands its work through one.
"""

from __future__ import annotations

import sys
import types
from collections import deque
from queue import Empty
from typing import Any

from greenlet import getcurrent

from corun._waiter import TIMED_OUT
from corun._waitqueue import WaitQueue
from corun.hub import get_hub
from corun.hub import sleep as hub_sleep

from .thread import _other_threads_may_wake

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
        try:
            return self._items.popleft()
        except IndexError:
            pass
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


class _CooperativeQueueFinder:
    """Gives a fresh import of ``_queue`` (one made after patching) the cooperative ``SimpleQueue``.

    ``queue`` takes ``SimpleQueue`` from the C module ``_queue``; code that
    re-imports both (``test.support.import_fresh_module``, module reloaders)
    would otherwise get the C type back, whose ``get`` blocks the OS thread.
    """

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "_queue":
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is cls or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                spec.loader = _CooperativeQueueLoader(spec.loader)
                return spec
        return None


class _CooperativeQueueLoader:
    """Loads the real ``_queue``, then puts the cooperative ``SimpleQueue`` in it."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        # A fresh C module has its own Empty, which its users catch.
        module.SimpleQueue = type(
            "SimpleQueue", (SimpleQueue,), {"_Empty": module.Empty, "__module__": __name__}
        )


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """Put the cooperative ``SimpleQueue`` in ``_queue`` and in its fresh imports (for ``monkey`` to set)."""
    import _queue  # noqa: F401 - imported so that its attribute can be replaced

    changes: list[tuple[str, str, Any]] = [("_queue", "SimpleQueue", SimpleQueue)]
    if _CooperativeQueueFinder not in sys.meta_path:
        # A new list rather than an insert, so that the original stays as it was.
        changes.append(("sys", "meta_path", [_CooperativeQueueFinder, *sys.meta_path]))
    return changes
