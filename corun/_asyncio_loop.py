"""The asyncio event loop that runs on the hub, and the shared one of each hub (see ``corun.asyncio``).

Facts this module relies on:

- ``asyncio.SelectorEventLoop`` blocks in exactly one place, its selector's
  ``select(timeout)``.  ``HubEventLoop`` gives it a selector that first
  polls with timeout 0 and, when nothing is ready, parks the loop's task on
  the hub until the selector's own fd is readable (an epoll fd is readable
  while it holds events) or the loop's timeout passes.  So the loop is one
  corun task among others, and coroutines never run in the hub itself.
- asyncio's ``call_soon`` does not write to the loop's self-pipe (only
  ``call_soon_threadsafe`` does): it assumes the caller *is* the loop.  A
  task of the same thread that calls it while the loop is parked would
  otherwise wait for the loop's next timeout, so ``call_soon`` and
  ``call_at`` wake the parked loop through the hub (``hub.wake``).  A real
  thread's ``call_soon_threadsafe`` writes the self-pipe, which makes the
  selector's fd readable, which wakes the hub's poll.
- The loop's ``time()`` is the hub's clock, so the loop's timers and the
  hub's timer that bounds its wait agree (a virtual clock covers both).
- A loop parked with nothing to do (no tasks, timers, fds or pending
  ``await_``) waits without watching its fd, so the hub can still report
  ``LoopExit`` when every task waits on it.
- asyncio's per-thread state (the running loop, async-generator hooks) is
  made per task by the park itself (``corun/_asyncio_state.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import selectors
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent

from . import _originals
from ._signals import SignalHandler, signal_handler
from ._waiter import Waiter
from .greenlet import Greenlet
from .hub import READ, Hub, _peek_hub, get_hub, register_lifecycle_hooks
from .threadpool import get_threadpool

__all__ = ["EventLoopPolicy", "HubEventLoop", "get_loop", "loop_factory", "shutdown"]

T = TypeVar("T")

# What a pending await_ is woken with when the shared loop's task ended under it.
_LOOP_ENDED: Any = object()


# Where corun's stdlib twins are (found, not imported).
_patches = importlib.util.find_spec("corun.patches")
_patch_dirs = [] if _patches is None else list(_patches.submodule_search_locations or [])
# The frames passed over: corun's, its twins' and threading's (whose waits the twins make).
_PASSED_DIRS = (
    *(os.path.abspath(d) + os.sep for d in [os.path.dirname(__file__), *_patch_dirs]),
    threading.__file__,
)
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
# Call sites already warned about (a blocking call inside a coroutine), once each.
_warned_sites: set[tuple[str, int]] = set()


class _HubSelector(_originals.DefaultSelector):
    """The loop's selector: polls without waiting, then parks the loop's task on the hub."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.loop: HubEventLoop | None = None
        # The waiter of the loop's task while it is parked here, for wake().
        self.parked: Waiter | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        hub = self.hub
        w = Waiter(hub, "the asyncio loop's next event")
        self.parked = w
        try:
            if timeout is None and self._idle():
                w.what = "the idle shared asyncio loop (no tasks, timers, fds or await_)"
                w.get()
            else:
                fd = self.fileno()
                hub.watch_fd(fd, READ, w)
                try:
                    w.get(timeout)
                finally:
                    hub.unwatch_fd(fd, READ, w)
        finally:
            self.parked = None
        return super().select(0)

    def _idle(self) -> bool:
        loop = self.loop
        if loop is None or loop._pending_awaits or len(self.get_map()) > 1:
            return False
        return not asyncio.all_tasks(loop)

    def wake(self) -> None:
        """Resume the loop's task if it is parked here (from this hub's thread)."""
        w = self.parked
        if w is not None:
            self.parked = None
            self.hub.wake(w)


class HubEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop that runs as a corun task: its waits park that task on the hub."""

    def __init__(self, hub: Hub | None = None) -> None:
        self._hub = hub = get_hub() if hub is None else hub
        selector = self._hub_selector = _HubSelector(hub)
        # await_ calls waiting on this loop: it is not idle while there are any.
        self._pending_awaits = 0
        self._os_thread: int | None = None
        self._corun_signals: dict[int, SignalHandler] = {}
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        """The hub's clock, so that asyncio timers and corun's agree."""
        return self._hub.clock()

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        handle = super().call_soon(callback, *args, context=context)
        self._hub_selector.wake()
        return handle

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        self._hub_selector.wake()
        return handle

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        # The self-pipe wakes a loop that watches its fd; an idle loop does not watch it.
        hub = self._hub
        if _originals.get_ident() == hub.thread_ident:
            self._hub_selector.wake()
        elif not hub.destroyed:
            hub.run_callback_threadsafe(self._hub_selector.wake)
        return handle

    def run_forever(self) -> None:
        hub = get_hub()
        if hub is not self._hub:
            # Made in another OS thread (new_event_loop there), run in this one: park on this one's hub.
            self._hub = self._hub_selector.hub = hub
        self._os_thread = _originals.get_ident()
        try:
            super().run_forever()
        finally:
            self._os_thread = None

    def _corun_coroutine_blocks(self) -> None:
        """Hear that this loop's task parks outside the loop's own wait: a coroutine called blocking code.

        The loop's other coroutines wait until that call returns; say so once
        per call site, naming ``to_async``.
        """
        if self._hub_selector.parked is not None:
            return  # the loop's own wait for events
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PASSED_DIRS):
            frame = frame.f_back  # type: ignore[assignment]
        if frame is None or frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
            # asyncio's own brief waits (3.11's child watcher starting its thread).
            return
        site = (frame.f_code.co_filename, frame.f_lineno)
        if site in _warned_sites:
            return
        _warned_sites.add(site)
        warnings.warn_explicit(
            f"a coroutine on the asyncio loop made a blocking call in {frame.f_code.co_name}(): "
            "the loop's other coroutines wait until it returns; run it in a task of its own with "
            "await corun.to_async(func, *args)",
            RuntimeWarning,
            site[0],
            site[1],
            module=frame.f_globals.get("__name__", "?"),
            registry={},
        )

    def _check_thread(self) -> None:
        # Debug mode's check: every task of this thread may call in; other OS threads may not.
        if self._os_thread is not None and _originals.get_ident() != self._os_thread:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:  # type: ignore[override]
        """Run ``callback(*args)`` on this loop when ``sig`` arrives, through corun's signal handling."""
        self._check_closed()  # type: ignore[attr-defined]
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self.remove_signal_handler(sig)
        handle = asyncio.Handle(callback, args, self, None)
        # The handler's task only schedules: the callback runs in the loop, as asyncio's does.
        self._corun_signals[sig] = signal_handler(sig, self._call_signal_handle, handle)

    def _call_signal_handle(self, handle: asyncio.Handle) -> None:
        if not handle.cancelled() and not self.is_closed():
            self.call_soon(handle._run)

    def remove_signal_handler(self, sig: int) -> bool:
        """Stop handling ``sig``; True if a handler was removed."""
        handler = self._corun_signals.pop(sig, None)
        if handler is None:
            return False
        handler.cancel()
        return True

    def close(self) -> None:
        for sig in list(self._corun_signals):
            self.remove_signal_handler(sig)
        super().close()

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """``executor=None`` runs ``func`` in a real OS thread of the hub's thread pool."""
        if executor is not None:
            return super().run_in_executor(executor, func, *args)
        self._check_closed()  # type: ignore[attr-defined]
        job: Greenlet[T] = Greenlet.spawn(get_threadpool(self._hub).apply, func, args)
        return self.create_task(_result_of(job))


async def _result_of(task: Greenlet[T]) -> T:
    return await task


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, except that its new loops (``asyncio.run``'s too) are ``HubEventLoop``.

    For Pythons whose ``asyncio.run`` takes no ``loop_factory`` (before 3.12),
    and for programs that make their loops with ``asyncio.new_event_loop()``.
    """

    _loop_factory = HubEventLoop


class _Shared:
    """The shared loop of one hub and the task that runs it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = HubEventLoop(hub)
        self.waiters: set[Waiter] = set()
        self.task: Greenlet[None] = Greenlet(self._run)
        self.task.name = "asyncio-loop"
        self.task.refuses_interrupts = (
            "it runs the shared asyncio loop, which that would end for every coroutine; bound a "
            "coroutine with asyncio.timeout() or asyncio.wait_for(), or cancel its asyncio task"
        )
        self.task.start()

    def _run(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            if _shared.get(self.hub) is self:
                del _shared[self.hub]
            for w in list(self.waiters):
                self.hub.wake(w, _LOOP_ENDED)
            if not self.hub.destroyed:
                # Stopped, or its task was killed: nothing will run it again.
                self.loop.close()


_shared: dict[Hub, _Shared] = {}
# Shared loops of destroyed hubs, and those a forked child inherited: kept
# referenced (never collected, so never closed as a running loop), never run again.
_left_by_parent: list[_Shared] = []


def _get_shared(hub: Hub) -> _Shared:
    shared = _shared.get(hub)
    if shared is None:
        shared = _shared[hub] = _Shared(hub)
    return shared


def get_loop() -> HubEventLoop:
    """The shared asyncio loop of this thread's hub, started (as a task) on first use."""
    return _get_shared(get_hub()).loop


def loop_factory() -> HubEventLoop:
    """A new private loop on this hub, for ``asyncio.run(..., loop_factory=)`` or ``asyncio.Runner``."""
    return HubEventLoop()


def in_loop_task(shared: _Shared) -> bool:
    """Whether the caller runs in the shared loop's task (a coroutine, or a greenlet under one)."""
    return getcurrent() is shared.task or asyncio.events._get_running_loop() is shared.loop


def shutdown() -> None:
    """Cancel the shared loop's tasks, shut down its async generators and executor, and close it.

    ``asyncio.run``'s last steps; the next use of the shared loop starts a new one.
    """
    hub = get_hub()
    shared = _shared.get(hub)
    if shared is None:
        return
    if in_loop_task(shared):
        raise RuntimeError("the shared asyncio loop cannot be shut down from its own task (a coroutine)")
    loop = shared.loop
    if not shared.task.dead:
        steps = loop.create_task(_shutdown_steps(loop))
        w = Waiter(hub, "the shared asyncio loop to shut down")
        steps.add_done_callback(lambda _t: hub.wake(w))
        shared.waiters.add(w)
        try:
            w.get()
        finally:
            shared.waiters.discard(w)
        loop.call_soon(loop.stop)
        shared.task.join()
    _shared.pop(hub, None)
    if not loop.is_closed():
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
                    "message": "unhandled exception at corun.asyncio shutdown",
                    "exception": t.exception(),
                    "task": t,
                }
            )
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _shutdown_at_exit() -> None:
    hub = _peek_hub()
    if hub is None or hub not in _shared:
        return  # no shared loop in this thread: nothing to do, and no hub to make for it
    try:
        shutdown()
    except Exception as exc:  # the program is ending: report, never mask its own outcome
        print(f"corun.asyncio: shutting the shared loop down failed: {exc!r}", file=sys.stderr)


def _drop_in_child(hub: Hub) -> None:
    # The parent's loop shares its epoll and self-pipe with the parent; the
    # child starts a new one on first use.
    shared = _shared.pop(hub, None)
    if shared is not None:
        _left_by_parent.append(shared)


def _forget_on_destroy(hub: Hub) -> None:
    # The loop's task ends with its hub, suspended in run_forever, so the loop
    # cannot be closed: its fds are, and the loop stays referenced, never run again.
    shared = _shared.pop(hub, None)
    if shared is not None:
        loop = shared.loop
        loop._close_self_pipe()  # type: ignore[attr-defined]
        loop._hub_selector.close()
        _left_by_parent.append(shared)


register_lifecycle_hooks(on_destroy=_forget_on_destroy, after_fork_in_child=_drop_in_child)
atexit.register(_shutdown_at_exit)
