"""``await_`` and ``to_async``: the two ways across between blocking code and coroutines.

Kept apart from ``corun.asyncio`` so that ``import corun`` does not import
asyncio (which imports socket, selectors and subprocess, before a program
has had the chance to patch them); the loop is imported on first use.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from greenlet import getcurrent

from ._waiter import TIMED_OUT, BlockingSwitchOutError, Waiter
from .greenlet import Greenlet
from .hub import Hub, get_hub

if TYPE_CHECKING:
    import asyncio

__all__ = ["await_", "to_async"]

T = TypeVar("T")

_MISSING: Any = object()


def await_(awaitable: Awaitable[T], *, timeout: float | None = None) -> T:
    """Run ``awaitable`` on the shared loop and park the calling task until it is done; return its result.

    The coroutine runs in a copy of the caller's context, and the variables it
    set are set in the caller's afterwards.  A kill or ``Timeout`` of the
    caller cancels it and waits for it to finish before going on.

    Raises:
        TimeoutError: ``timeout`` seconds passed first (the coroutine was cancelled).
        RuntimeError: called in the task that runs the shared loop (use ``await``,
            or ``to_async`` for blocking code), or that loop ended meanwhile.
    """
    import asyncio

    from ._asyncio_loop import _LOOP_ENDED, _get_shared, in_loop_task

    hub = get_hub()
    if getcurrent() is hub:
        raise BlockingSwitchOutError(
            f"cannot await_ {awaitable!r} inside the hub; a hub callback must not block"
        )
    shared = _get_shared(hub)
    loop = shared.loop
    if in_loop_task(shared):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()  # as asyncio.run does: no "never awaited" warning on top of the error
        raise RuntimeError(
            "await_() cannot be called from a coroutine of the shared asyncio loop (it would wait "
            "for itself): use await there, and corun.to_async(func) to run blocking code"
        )
    snapshot: list[contextvars.Context] = []
    task = loop.create_task(_run_and_snapshot(awaitable, snapshot))
    w = Waiter(hub, f"await_ {awaitable!r}")
    task.add_done_callback(lambda _t: hub.wake(w))
    shared.waiters.add(w)
    loop._pending_awaits += 1
    try:
        try:
            outcome = w.get(timeout)
        except BaseException:
            _cancel_and_wait(hub, task)
            raise
        if outcome is _LOOP_ENDED:
            raise RuntimeError(f"the shared asyncio loop ended before {awaitable!r} finished")
        if outcome is TIMED_OUT:
            _cancel_and_wait(hub, task)
            raise TimeoutError(f"await_ gave up on {awaitable!r} after {timeout} s")
    finally:
        loop._pending_awaits -= 1
        shared.waiters.discard(w)
    if snapshot:
        for var, value in snapshot[0].items():
            if var.get(_MISSING) is not value:
                var.set(value)
    return task.result()


async def _run_and_snapshot(awaitable: Awaitable[T], snapshot: list[contextvars.Context]) -> T:
    try:
        return await awaitable
    finally:
        snapshot.append(contextvars.copy_context())


def _cancel_and_wait(hub: Hub, task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and park until it has finished, so its ``finally`` blocks have run."""
    if task.done():
        return
    task.cancel()
    from ._asyncio_loop import _shared

    shared = _shared.get(hub)
    if task.done() or shared is None or shared.task.dead:
        return
    w = Waiter(hub, f"{task!r} to finish after cancel")
    task.add_done_callback(lambda _t: hub.wake(w))
    w.get()


async def to_async(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking-style ``func(*args, **kwargs)`` in a new corun task and await its result.

    The task runs in a copy of the coroutine's context.  Cancelling the await
    kills the task and waits for it; a task killed from elsewhere gives the
    awaiter ``CancelledError``.
    """
    task: Greenlet[T] = Greenlet.spawn(func, *args, **kwargs)
    return await task
