"""asyncio's per-thread state, kept per task: taken out when a task parks, put back when it resumes.

Facts this module relies on:

- asyncio keeps the running loop and the async-generator hooks per OS
  thread (``asyncio.events._set_running_loop``, ``sys.set_asyncgen_hooks``),
  and a loop sets both for as long as ``run_forever`` runs.  The current
  task is kept per loop, so it follows the running loop.
- Every task of a hub leaves the CPU through one park (``Waiter.get``, or
  ``sleep(0)``'s yield) and comes back out of it.  Taking the state out
  there and putting it back on resume makes it per task: the hub and every
  other task see no running loop, so a sibling's ``asyncio.run`` works
  while a coroutine waits in a patched ``time.sleep``, and an async
  generator is finalized by the loop it started on.
- Nothing is done until ``asyncio.events`` is imported, and a task with no
  running loop pays one C call per park.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Final

__all__ = ["leave"]


def _no_loop(*_args: Any) -> None:
    """What stands for asyncio's loop functions until it is imported."""
    return None


class _Asyncio:
    """asyncio's two per-thread loop functions, once ``asyncio.events`` is imported.

    Fields of one object, and the module table a ``Final`` reference: a park
    reads them natively when compiled, not through module globals.
    """

    __slots__ = ("get_running_loop", "imported", "set_running_loop")

    def __init__(self) -> None:
        self.imported = False
        self.get_running_loop: Callable[[], Any] = _no_loop
        self.set_running_loop: Callable[[Any], None] = _no_loop


_asyncio: Final = _Asyncio()
_modules: Final = sys.modules

# The hooks a task without a running loop has (the interpreter's defaults).
_OUTSIDE: Final[tuple[Any, Any]] = (None, None)


def leave() -> Callable[[], None] | None:
    """Take the current task's running loop and async-generator hooks out; return what puts them back.

    None when the task runs no loop (nothing to put back).
    """
    state = _asyncio
    if not state.imported:
        events = _modules.get("asyncio.events")
        if events is None:
            return None
        state.get_running_loop = events._get_running_loop
        state.set_running_loop = events._set_running_loop
        state.imported = True
    loop = state.get_running_loop()
    if loop is None:
        return None
    # A loop that wants to hear of coroutines that block it (corun's own loops).
    blocked = getattr(loop, "_corun_coroutine_blocks", None)
    if blocked is not None:
        blocked()
    hooks = sys.get_asyncgen_hooks()
    set_loop = state.set_running_loop
    set_loop(None)
    sys.set_asyncgen_hooks(*_OUTSIDE)
    return _putting_back(set_loop, loop, hooks)


def _putting_back(set_loop: Callable[[Any], None], loop: Any, hooks: Any) -> Callable[[], None]:
    """What puts a task's loop and hooks back.

    A function of its own: compiled, the function that makes a closure
    allocates its environment on entry, and ``leave`` is called on every park.
    """

    def back() -> None:
        set_loop(loop)
        sys.set_asyncgen_hooks(*hooks)

    return back
