"""A fresh hub for a test, and what a test left behind on it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from corun import hub as _hub
from corun._waiter import Waiter
from corun.greenlet import Greenlet
from corun.hub import Hub

__all__ = ["describe_leaks", "fresh_hub"]


@contextmanager
def fresh_hub(clock: Callable[[], float] | None = None) -> Iterator[Hub]:
    """A new hub (on ``clock``, real time by default) for the calling thread while the block runs.

    The hub is destroyed at the end, ending its tasks and closing its fds,
    and the thread's previous hub, if any, is its hub again.
    """
    previous = _hub._peek_hub()
    hub = Hub(clock=clock)
    _hub._set_thread_hub(hub)
    try:
        yield hub
    finally:
        hub.destroy()
        if previous is not None and not previous.destroyed:
            _hub._set_thread_hub(previous)


def describe_leaks(hub: Hub) -> list[str]:
    """What is left on ``hub``, one line each: live tasks, pending timers, fd registrations, thread work.

    An empty list means the hub holds nothing: every task ended, every timer
    fired or was cancelled, every fd it watched was unregistered.
    """
    tasks: list[Greenlet] = []
    waits: dict[object, Waiter] = {}
    if hub.counts.live_tasks:  # the heap is searched only when there is something to find
        objects = gc.get_objects()
        tasks = [o for o in objects if isinstance(o, Greenlet) and o.parent is hub and not o.ready()]
        waits = {w.greenlet: w for w in objects if isinstance(w, Waiter) and w.hub is hub}
    leaks = []
    for task in tasks:
        wait = waits.get(task)
        if wait is not None:
            doing = f", waiting on {wait.describe()}"
        else:
            doing = "" if task.started else ", never started"
        leaks.append(f"task {task.name!r} is still alive{doing}: {task!r}")
    now = hub.clock()
    for timer in hub._timers:
        func = timer[2]
        if func is None:
            continue
        owner = getattr(func, "__self__", None)
        if isinstance(owner, Waiter) and owner.greenlet in tasks:
            continue  # the deadline of a leaked task's wait: said already
        leaks.append(f"a timer due in {timer[0] - now:.3f} s would call {func!r}{timer[3]!r}")
    for fd, state in sorted(hub.io._fds.items()):
        users = len(state.readers) + len(state.writers)
        waited = f", {users} waiting on it" if users else " (left open, or closed without notify_closing)"
        leaks.append(f"fd {fd} is still registered with the hub{waited}")
    if hub.pending:
        leaks.append(f"{hub.pending} job(s) in other threads have not delivered their result")
    return leaks
