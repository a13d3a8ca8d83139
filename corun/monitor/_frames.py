"""Reading a hub's thread from another thread: which greenlet runs there, and stacks as text.

Facts this module relies on:

- ``sys._current_frames()`` gives each OS thread's innermost frame, which is
  the innermost frame of the greenlet running on it; following ``f_back``
  from there ends at that greenlet's first frame (greenlet starts each one a
  stack of its own).  That first frame tells whose it is: ``Greenlet.run``
  (its ``self`` is the task), ``Hub.run`` (the hub), or the thread's own
  code (the main task) when the root greenlet is the one not suspended
  (its ``gr_frame`` is None only while it runs).
- A suspended greenlet's innermost frame is its ``gr_frame``.
- Frames are read with the GIL held, so a thread cannot change them while
  they are read; it may have moved on by the time the text is printed.
"""

from __future__ import annotations

import sys
import traceback
from types import CodeType, FrameType
from typing import Any

from ..greenlet import Greenlet
from ..hub import Hub

__all__ = ["is_polling", "running_greenlet", "stack_text", "thread_frame"]

# A Python function in the compiled build too (corun._runframe).
_TASK_RUN: CodeType = Greenlet.run.__code__
_HUB_RUN: CodeType = Hub.run.__code__
# Modules whose frames at the outer end of a stack are the machinery that started it
# (named, not imported: the runner is far above this module).
_PACKAGE = __name__.partition(".")[0]
_STARTERS = (f"{_PACKAGE}.__main__", f"{_PACKAGE}.monkey.runner", "runpy")


def thread_frame(ident: int) -> FrameType | None:
    """The innermost frame of OS thread ``ident``, or None if it is gone."""
    return sys._current_frames().get(ident)


def _bottom(frame: FrameType) -> FrameType:
    while frame.f_back is not None:
        frame = frame.f_back
    return frame


def running_greenlet(hub: Hub, top: FrameType) -> tuple[Any, str]:
    """The greenlet of ``hub``'s thread whose innermost frame is ``top``, and its name in words.

    Returns:
        ``(task, "task 'name'")`` for a Greenlet, ``(hub, "the hub")``,
        ``(root, "the main task")`` for the thread's own code, or
        ``(None, "a greenlet running func")`` for another raw greenlet.
    """
    bottom = _bottom(top)
    code = bottom.f_code
    if code is _TASK_RUN:
        task = bottom.f_locals.get("self")
        if isinstance(task, Greenlet):
            return task, f"task {task.name!r}"
    if code is _HUB_RUN:
        return hub, "the hub"
    root = hub.parent
    if root is not None and root.gr_frame is None:
        return root, "the main task"
    return None, f"a greenlet running {code.co_name}"


def is_polling(hub: Hub, top: FrameType) -> bool:
    """Whether the thread is waiting in the hub's poll of the OS (idle, not blocked)."""
    poll = getattr(type(hub.io), "_kernel_poll", None)
    code = getattr(poll, "__code__", None)
    frame: FrameType | None = top
    # The back end's poll calls the OS directly, or through selectors (two frames up).
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _module(frame: FrameType) -> str:
    """The module a frame runs in; ``python -m corun`` runs as ``__main__`` with a spec naming it."""
    spec = frame.f_globals.get("__spec__")
    name = getattr(spec, "name", None) or frame.f_globals.get("__name__", "")
    return str(name)


def stack_text(top: FrameType, *, skip_inner_corun: bool = False) -> str:
    """A stack as a traceback prints it, innermost last, without the frames that started it.

    Args:
        skip_inner_corun: leave out corun's own frames at the inner end (how
            a waiting task parks); what it waits on is said in words.
    """
    frames = []
    frame: FrameType | None = top
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    while len(frames) > 1 and (_module(frames[0]) in _STARTERS or frames[0].f_code is _TASK_RUN):
        del frames[0]
    if skip_inner_corun:
        while len(frames) > 1 and _module(frames[-1]).startswith("corun."):
            del frames[-1]
    # A patched clock read (time.monotonic in a spinning loop) never blocks: the line calling it does.
    clock = [i for i, f in enumerate(frames[1:], 1) if _module(f) == "corun.patches.time"]
    if clock and all(_module(f).startswith("corun.") for f in frames[clock[0] :]):
        del frames[clock[0] :]
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    return "".join(summary.format())
