"""asyncio on the hub: one shared event loop per hub, ``await_`` from blocking code, ``to_async`` back.

- ``get_loop()``: the shared loop of this thread's hub, a ``HubEventLoop``
  running as one corun task; its waits park that task on the hub, so
  coroutines and blocking-style tasks share one thread and one scheduler.
- ``await_(coro)``: from any task but the loop's own, run a coroutine on the
  shared loop and wait for it; ``await to_async(func, ...)`` (or ``await``
  on a ``corun.Greenlet``) from a coroutine, the other way.
- ``run(main)``: ``asyncio.run`` on the shared loop; ``loop_factory`` for
  ``asyncio.run(..., loop_factory=)`` and ``asyncio.Runner`` (3.12+ and 3.11+):
  a private loop on the hub.
- asyncio's per-thread state (running loop, current task, async-generator
  hooks) is kept per task, so ``asyncio.run`` in any task keeps its meaning.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._asyncio_loop import HubEventLoop as HubEventLoop
from ._asyncio_loop import _shared
from ._asyncio_loop import get_loop as get_loop
from ._asyncio_loop import loop_factory as loop_factory
from ._await import await_ as await_
from ._await import to_async as to_async
from .hub import get_hub

__all__ = ["HubEventLoop", "await_", "get_loop", "loop_factory", "run", "shutdown", "to_async"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the shared loop from blocking code, with ``asyncio.run``'s shutdown steps after.

    The loop's other tasks are cancelled, async generators and the default
    executor shut down, and the loop closed; the next use starts a new one.
    """
    try:
        return await_(main)
    finally:
        shutdown()


def shutdown() -> None:
    """Cancel the shared loop's tasks, shut down its async generators and executor, and close it."""
    hub = get_hub()
    shared = _shared.get(hub)
    if shared is None:
        return
    loop = shared.loop
    if not shared.task.dead:
        await_(_shutdown_steps(loop))
        loop.call_soon(loop.stop)
        shared.task.join()
    _shared.pop(hub, None)
    loop.close()


async def _shutdown_steps(loop: HubEventLoop) -> None:
    this = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not this]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during corun.asyncio shutdown",
                    "exception": t.exception(),
                    "task": t,
                }
            )
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _shutdown_at_exit() -> None:
    try:
        shutdown()
    except Exception as exc:  # the program is ending: report, never mask its own outcome
        print(f"corun.asyncio: shutting the shared loop down failed: {exc!r}", file=sys.stderr)


atexit.register(_shutdown_at_exit)
