"""What ``await task`` runs (``Greenlet.__await__``), in a module the compiled build leaves alone.

A compiled generator's ``yield from`` throws into the awaited future with the
three-argument ``throw()`` that Python 3.12 deprecates, so this one stays
Python.  It imports nothing of corun: ``corun.greenlet`` imports it, and an
import back would make a cycle.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from greenlet import GreenletExit

if TYPE_CHECKING:
    import asyncio

    from .greenlet import Greenlet

T = TypeVar("T")


def await_task(task: Greenlet[T]) -> Generator[Any, None, T]:
    """The task's result for the awaiting coroutine, or its exception; cancelling kills the task."""
    import asyncio  # only coroutines await tasks; corun itself never needs asyncio

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    settle = partial(_settle_from_hub, loop, ended)
    task.rawlink(settle)
    try:
        yield from ended
    except asyncio.CancelledError:
        if not task._done:
            task.kill(block=False)
        while not task._done:  # its finally blocks run before the awaiter goes on
            gone: asyncio.Future[None] = loop.create_future()
            settle_gone = partial(_settle_from_hub, loop, gone)
            task.rawlink(settle_gone)
            try:
                yield from gone
            except asyncio.CancelledError:
                pass
            finally:
                task.unlink(settle_gone)
        raise
    finally:
        task.unlink(settle)
    if task._exc_info is not None:
        raise task._exc_info[1].with_traceback(task._exc_info[2])
    if isinstance(task.value, GreenletExit):
        raise asyncio.CancelledError(f"{task!r} was killed")
    return task.value  # type: ignore[return-value]


def _settle_from_hub(loop: Any, future: Any, _task: object) -> None:
    # From the hub: the thread-safe call wakes any loop, parked in a selector or not.
    loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)
