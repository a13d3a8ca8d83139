"""Gives the compiled core's task and hub ``run`` a Python frame, by which their stacks are known."""

from __future__ import annotations

from typing import Any

__all__ = ["give_run_a_frame"]


def give_run_a_frame(cls: type) -> None:
    """Wrap a compiled ``cls.run``, which runs without a Python frame, in a Python function."""
    compiled_run: Any = cls.__dict__.get("run")
    if compiled_run is None or getattr(compiled_run, "__code__", None) is not None:
        return

    # The monitor and dumps find a task's or hub's stack by this frame,
    # whose ``self`` is the task or the hub.  It must be in place before the
    # first one starts, so the hub and task modules call this as they load.
    def run(self: Any) -> None:
        compiled_run(self)

    run.__qualname__ = f"{cls.__name__}.run"
    run.__doc__ = compiled_run.__doc__
    setattr(cls, "run", run)  # noqa: B010 - replacing a method of a class that is not ours to redefine
