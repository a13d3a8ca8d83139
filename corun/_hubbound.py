"""Binding a synchronisation primitive to the hub of one OS thread.

A primitive's waiters are tasks of one hub, and only that hub may wake them.
So the first thread that waits on (or wakes) a primitive owns it; a wait or a
wake-up from another thread is a bug and raises at once, instead of touching
another thread's hub without a lock.
"""

from __future__ import annotations

from . import _originals
from ._mypyc import mypyc_attr
from .hub import Hub, get_hub

__all__ = ["HubBound"]


@mypyc_attr(allow_interpreted_subclasses=True)
class HubBound:
    """Mixin: the primitive belongs to the hub of the first thread that waits on it."""

    _hub: Hub | None = None

    def _own_hub(self) -> Hub:
        """The calling thread's hub, binding to it on first use.

        Raises:
            RuntimeError: the primitive already belongs to another thread's hub.
        """
        hub = get_hub()
        bound = self._hub
        if bound is not hub:
            # A destroyed hub has no tasks left to wake: the next one may take over.
            if bound is not None and not bound.destroyed:
                raise RuntimeError(
                    f"{self!r} belongs to the hub of thread {bound.thread_ident}, not to the "
                    f"calling thread {_originals.get_ident()}; use it from that thread only "
                    "(hub.run_callback_threadsafe crosses threads)"
                )
            self._hub = hub
        return hub
