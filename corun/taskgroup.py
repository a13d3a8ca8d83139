"""Structured concurrency: a block whose tasks cannot outlive it.

``with TaskGroup() as tg: tg.spawn(f, x)`` waits for every child when the
block ends.  The first child failure kills the other children and interrupts
the block's own task (if it is still inside the block); the failures are then
raised together as an ``ExceptionGroup``.  An ``Exception`` raised by the
block itself also kills the children and joins the group, as in asyncio and
trio.  A ``BaseException`` that ends the block early (a ``Timeout`` around
it, a kill) kills the children, waits for them to finish, and propagates
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeVar

from greenlet import GreenletExit, getcurrent

from ._exceptiongroup import exception_group
from ._waiter import Waiter, throw_into
from .greenlet import Greenlet
from .hub import Hub, get_hub

__all__ = ["TaskGroup"]

T = TypeVar("T")


class _GroupCancelled(BaseException):
    """Thrown into the block's task when a child failed; replaced on exit."""


class TaskGroup:
    """A scope for tasks: leaving it waits for them, a failure cancels them all."""

    def __init__(self) -> None:
        self._children: set[Greenlet[Any]] = set()
        self._failures: list[BaseException] = []
        self._owner: Any = None
        self._hub: Hub | None = None
        self._exiting = False
        self._closed = False
        self._cancelling = False
        self._cancel_exc: _GroupCancelled | None = None
        self._waiter: Waiter | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<TaskGroup {state} children={len(self._children)} failures={len(self._failures)}>"

    def __enter__(self) -> TaskGroup:
        if self._owner is not None:
            raise RuntimeError(f"{self!r} was already entered; use a new TaskGroup")
        self._owner = getcurrent()
        self._hub = get_hub()
        return self

    def spawn(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
        """Start ``func(*args, **kwargs)`` as a child of this group."""
        if self._owner is None:
            raise RuntimeError("TaskGroup.spawn needs the group to be entered (use `with`)")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; no task may outlive its group")
        g: Greenlet[T] = Greenlet(func, *args, **kwargs)
        g.report_errors = False  # raised from the `with` instead
        self._children.add(g)
        g.rawlink(self._child_done)
        g.start()
        if self._cancelling:
            # Spawned by a task the cancellation has not reached yet: the group
            # would otherwise wait for new work nobody wants any more.
            g.kill(block=False)
        return g

    def cancel(self) -> None:
        """Kill every child (they finish as killed, which is not a failure)."""
        self._cancelling = True
        for child in list(self._children):
            child.kill(block=False)

    @property
    def children(self) -> frozenset[Greenlet[Any]]:
        """The children still running."""
        return frozenset(self._children)

    def _child_done(self, child: Greenlet[Any]) -> None:
        # Called from the hub when a child finishes.
        self._children.discard(child)
        exc = child.exception
        if exc is not None and not isinstance(exc, GreenletExit):
            self._failures.append(exc)
            if not self._cancelling:
                self.cancel()
                if not self._exiting:
                    self._cancel_exc = _GroupCancelled(f"a child of {self!r} failed")
                    assert self._hub is not None
                    self._hub.run_callback(self._interrupt_owner)
        if not self._children and self._waiter is not None:
            assert self._hub is not None
            self._hub.wake(self._waiter)

    def _interrupt_owner(self) -> None:
        if not self._exiting and self._cancel_exc is not None:
            throw_into(self._owner, self._cancel_exc)

    def _wait_children(self) -> None:
        assert self._hub is not None
        while self._children:
            self._waiter = Waiter(self._hub, self)
            try:
                self._waiter.get()
            finally:
                self._waiter = None

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        self._exiting = True
        body_exc = None if exc is self._cancel_exc else exc
        if body_exc is not None:
            self.cancel()
        try:
            self._wait_children()
        except BaseException:
            # Interrupted while waiting (a Timeout around the block, a kill):
            # the children go too, and the interruption propagates.
            self.cancel()
            self._closed = True
            self._wait_children()
            raise
        self._closed = True
        failures = list(self._failures)
        if isinstance(body_exc, Exception):
            failures.insert(0, body_exc)
        elif body_exc is not None:
            return False
        if failures:
            raise exception_group("unhandled errors in a TaskGroup", failures)
        return False
