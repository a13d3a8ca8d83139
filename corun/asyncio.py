"""asyncio on the hub: one shared event loop per hub, ``await_`` from blocking code, ``to_async`` back.

- ``get_loop()``: the shared loop of this thread's hub, a ``HubEventLoop``
  running as one corun task; its waits park that task on the hub, so
  coroutines and blocking-style tasks share one thread and one scheduler.
- ``await_(coro)``: from any task but the loop's own, run a coroutine on the
  shared loop and wait for it; ``await to_async(func, ...)`` (or ``await``
  on a ``corun.Greenlet``) from a coroutine, the other way.
- ``run(main)``: ``asyncio.run`` on the shared loop; ``loop_factory`` for
  ``asyncio.run(..., loop_factory=)`` and ``asyncio.Runner`` (3.12+ and 3.11+):
  a private loop on the hub; ``EventLoopPolicy`` makes every new loop one
  (``asyncio.set_event_loop_policy(corun.asyncio.EventLoopPolicy())``).
- asyncio's per-thread state (running loop, current task, async-generator
  hooks) is kept per task, so ``asyncio.run`` in any task keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from ._asyncio_loop import EventLoopPolicy as EventLoopPolicy
from ._asyncio_loop import HubEventLoop as HubEventLoop
from ._asyncio_loop import _get_shared, in_loop_task
from ._asyncio_loop import get_loop as get_loop
from ._asyncio_loop import loop_factory as loop_factory
from ._asyncio_loop import shutdown as shutdown
from ._await import await_ as await_
from ._await import to_async as to_async
from .hub import get_hub

__all__ = [
    "EventLoopPolicy",
    "HubEventLoop",
    "await_",
    "get_loop",
    "loop_factory",
    "run",
    "shutdown",
    "to_async",
]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` on the shared loop from blocking code, with ``asyncio.run``'s shutdown steps after.

    The loop's other tasks are cancelled, async generators and the default
    executor shut down, and the loop closed; the next use starts a new one.

    Raises:
        RuntimeError: called from a coroutine of the shared loop.
    """
    shared = _get_shared(get_hub())
    if in_loop_task(shared):
        main.close()
        raise RuntimeError("corun.asyncio.run() cannot be called from a coroutine of the shared loop")
    if debug is not None:
        shared.loop.set_debug(debug)
    try:
        return await_(main)
    finally:
        shutdown()
