"""How a task blocks and how it is woken: one way each, for every wait in corun.

The rule:

- **Block** with ``Waiter.get()``: the current task records itself on a fresh
  waiter and switches to its hub.  ``sleep``, fd readiness, locks, events,
  queues, ``join``, ``Timeout``, ``signal.pause`` and the ``_thread``/``queue``
  twins all come down to it; a line of waiters is a ``WaitQueue``
  (``corun/_waitqueue.py``), the one wait queue, used by the thread twins too.
- **Wake** a parked task by scheduling its waiter with a value:

  * from the waiter's own OS thread (a task or a hub callback):
    ``hub.wake(waiter, value)``;
  * from any other OS thread (or a signal handler that may interrupt the
    hub anywhere): ``hub.wake_threadsafe(waiter, value)``, which also
    brings the hub out of its poll.

  A ``WaitQueue`` picks between the two for each waiter it grants to.
- **Deliver**: only the hub switches into a parked task, by calling
  ``Waiter.switch(value)`` from its ready queue (what ``wake`` scheduled),
  from a timer (a timed wait's deadline) or from its poll (an fd is ready).
  ``switch`` does nothing once the task has left that wait, because it was
  woken already or a kill or timeout interrupted it first.  That check,
  made at delivery rather than when the wake-up was scheduled, makes a wait
  "woken exactly once" even when a timer, an fd, a grant and a kill all race
  for the same task.
- **Interrupt** a task (kill, ``Timeout``, an exception for the main task)
  with ``throw_into(task, exc)``, run on the task's hub: it raises in
  whatever wait the task is in, and that wait's ``finally`` cleans up.

A wait can be woken from the moment its ``Waiter`` is made, not only once
it parks: a finalizer the collector runs, or a signal handler in the main
task, may run in between, and may itself wait.  A wake-up of the outer wait
then resumes that inner wait, which sees that its own ``result`` is not set
and parks again; the outer wait finds its ``result`` set and does not park.

No other module switches into a parked task.  The hub also resumes tasks
that were never parked: a task that yielded (``sleep(0)``, the urgent
calls of ``run_urgent``) and a task's first start.

When waits are timed (``wait_clock`` set, by ``corun.monitor`` while a
monitor or a dump signal is on), a waiter records when its task parked, so
a dump can say how long each task has waited; otherwise a wait pays only for
reading that one module global.

Cancellation needs no registry: the task that leaves a wait early runs its own
``finally`` block, which is where each primitive removes its registration.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import greenlet as _greenlet

from ._asyncio_state import leave as _leave_asyncio
from ._io_base import FdTable
from ._mypyc import mypyc_attr

if TYPE_CHECKING:
    from collections.abc import Callable

    from greenlet import greenlet as RawGreenlet

    from .hub import Hub, TimerHandle

__all__ = [
    "TIMED_OUT",
    "BlockingSwitchOutError",
    "HubState",
    "Waiter",
    "current",
    "keeps_greenlet_switch",
    "state_of",
    "task_class",
    "throw_into",
    "wait_clock",
]

# Final: compiled, a C static rather than a module global looked up on every wait.
getcurrent: Final = _greenlet.getcurrent
# The greenlet's own switch, called on the hub: no lookup of the name in the hub's dict and type.
_switch: Final = _greenlet.greenlet.switch
_raw_greenlet: Final = _greenlet.greenlet

# A clock read when a task parks, while waits are timed; None (the default) times nothing.
wait_clock: Callable[[], float] | None = None


class _TimedOut:
    """The value a timed wait returns when its deadline passed first."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Final[Any] = _TimedOut()


@mypyc_attr(native_class=False)
class BlockingSwitchOutError(AssertionError):
    """A wait was attempted inside the hub itself (a callback tried to block)."""


# ``Waiter.result`` until the wait is woken.
_NOT_WOKEN: Final[Any] = object()


@final
class HubState:
    """What every wait and wake-up of one hub reads, kept where compiled code reads it natively.

    The hub is a greenlet subclass, so the compiled core reads its own
    attributes through its dict; these are read on every wait and wake-up.
    The hub's ``_ready``, ``urgent_calls``, ``thread_ident`` and ``io`` are these.
    """

    def __init__(self, hub: Hub, thread_ident: int, io: FdTable) -> None:
        self.hub = hub
        self.thread_ident = thread_ident
        # The readiness back end (``Hub.io`` reads and sets this one).
        self.io = io
        # (function, args) pairs; tuples because this is the hottest path.
        self.ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        # Bound once: compiled code calls a deque's method only by looking it up by name.
        self.schedule: Callable[[tuple[Callable[..., Any], tuple[Any, ...]]], None] = self.ready.append
        # Calls queued by call_urgent that have not run yet; tested on every wake-up.
        self.urgent_calls: list[Callable[[], Any]] = []

    def wake(self, waiter: Waiter, value: Any = None) -> None:
        """``Hub.wake``: resume ``waiter``'s task with ``value`` on the hub's next pass."""
        self.schedule((deliver, (waiter, value)))


@final
class _Current:
    """The state of the hub ``get_hub`` last answered with (None: ask the thread-local)."""

    def __init__(self) -> None:
        self.state: HubState | None = None


# Set and cleared only in corun.hub, where the thread-local it stands for is kept.
current: Final = _Current()


@final
class _TaskClass:
    """corun's task class, which keeps greenlet's own ``switch`` (set by ``corun.greenlet``)."""

    def __init__(self) -> None:
        self.cls: type = _raw_greenlet


task_class: Final = _TaskClass()


def keeps_greenlet_switch(g: object) -> bool:
    """Whether ``g`` is resumed by greenlet's own ``switch``: then it is called without a lookup.

    Looking ``switch`` up on a task makes a bound method each time; only the
    exact classes known to keep greenlet's are spared it, so a subclass's
    own ``switch`` is still the one called.
    """
    cls = type(g)
    return cls is task_class.cls or cls is _raw_greenlet


def state_of(hub: Hub) -> HubState:
    """``hub.state``, read natively when ``hub`` is the one ``get_hub`` last answered with (nearly always)."""
    state = current.state
    return state if state is not None and state.hub is hub else hub.state


class Waiter:
    """One wait of one task: parked at most once, woken at most once."""

    __slots__ = ("granted", "greenlet", "hub", "result", "since", "state", "timer", "value", "what")

    def __init__(self, hub: Hub, what: object = None) -> None:
        self.hub = hub
        self.state = state_of(hub)
        # The task that waits, from the moment the wait exists: a wake-up that
        # comes before it parks (see get) is kept, not dropped.
        self.greenlet: Any = getcurrent()
        # What the wait was woken with; _NOT_WOKEN until then.
        self.result: Any = _NOT_WOKEN
        # What the task waits on, formatted only when a hang is reported.
        self.what = what
        # Set by a wait queue when it hands this waiter something (a lock, an
        # item); if the task is then cancelled before it runs, it gives it back.
        self.granted = False
        # What a wait queue's waiter holds (an item to put) or was granted.
        self.value: Any = None
        # The deadline of a timed wait, while it is parked.
        self.timer: TimerHandle | None = None
        # When the task parked, on ``wait_clock``; None when waits are not timed.
        self.since: float | None = None

    def get(self, timeout: float | None = None) -> Any:
        """Park the current task until woken; return the value it was woken with.

        With a timeout, returns ``TIMED_OUT`` if nothing woke the task in time.
        """
        hub = self.hub
        current = getcurrent()
        if current is hub:
            raise BlockingSwitchOutError(
                f"cannot block inside the hub (waiting on {self.describe()}); "
                "a hub callback must spawn a task to wait"
            )
        if self.result is not _NOT_WOKEN:
            # Woken before it could park (see below): nothing to wait for.
            self.greenlet = None
            return self.result
        self.greenlet = current
        if wait_clock is not None:
            self.since = wait_clock()
        # asyncio's per-thread state goes with the task (corun/_asyncio_state.py).
        back = _leave_asyncio()
        # Between the wait's registration and its park, this task may run a
        # finalizer the collector calls or a signal handler, and that code may
        # itself wait.  A wake-up of this wait then resumes that inner wait in
        # its place: the inner one parks again (its own wake-up is yet to
        # come), and this one, already woken, does not park.  So each park is
        # checked against ``result``, never taken as this wait's wake-up.
        timer: TimerHandle | None = None
        if timeout is not None:
            timer = self.timer = hub.call_later(timeout, self.switch, TIMED_OUT)
        try:
            while self.result is _NOT_WOKEN:
                value = _switch(hub)
                if self.result is _NOT_WOKEN and hub.dead:
                    # Destroyed: it hands control back to the task that made it.
                    self.result = value
        finally:
            self.greenlet = None
            if timer is not None:
                timer.cancel()
            if back is not None:
                back()
        if self.state.urgent_calls:
            # Signal handlers that interrupted the hub run before this task goes on.
            hub.run_urgent()
        return self.result

    def switch(self, value: Any = None) -> None:
        """Deliver a wake-up: resume the waiting task with ``value``; hub only; no-op once it left."""
        g = self.greenlet
        if g is not None:
            self.greenlet = None
            self.result = value
            if keeps_greenlet_switch(g):
                _switch(g, value)
            else:
                g.switch(value)

    def describe(self) -> str:
        """Say in words what this wait is for."""
        what = self.what
        if what is None:
            return "nothing in particular"
        if isinstance(what, str):
            return what
        return repr(what)

    def __repr__(self) -> str:
        return f"<Waiter {self.describe()} task={self.greenlet!r}>"


# What a wake-up queues on the hub's ready queue: compiled, a C static, and no bound method per wake-up.
deliver: Final = Waiter.switch


def throw_into(task: RawGreenlet, exc: BaseException) -> None:
    """Raise ``exc`` in ``task`` where it is suspended; hub (or another task) only; no-op once it ended."""
    # Throwing into a finished greenlet would raise in its parent, the hub;
    # into one never started, it would end it without running its finally.
    if task and not task.dead:
        task.throw(exc)
