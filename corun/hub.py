"""The hub: one event loop per OS thread, itself a greenlet.

Facts this module relies on:

- greenlet switches are cheap C-stack copies, and an uncaught exception or a
  return in a greenlet goes to its *parent*.  Tasks are children of the hub,
  so a finished task falls back into the loop; the hub is a child of the
  thread's root greenlet, so ``LoopExit`` and Ctrl-C are thrown there.
- A task blocks in exactly one way (``corun._waiter.Waiter.get``) and is woken
  only from the hub, so the loop below is the single place where callbacks,
  timers and I/O wake-ups run.
- CPython runs signal handlers in the main thread, in whichever greenlet is
  executing; a ``KeyboardInterrupt`` raised while the hub polls surfaces in
  ``_run_once`` and is re-thrown into the root greenlet.  Work a handler
  must not do inside the hub goes to ``call_urgent``: it runs in a task of
  its own before the next task the hub resumes takes another step.  That
  task might otherwise block the OS thread in C code (an object made
  before patching) with the call, which the stdlib would have run by
  then, still queued.
- ``os.fork`` copies the hub with file descriptors that are now shared with
  the parent (epoll, wake-up fd); the child must get new ones before it
  touches them, which ``reinit`` does from an at-fork hook.
- The hub knows nothing built on it.  Modules above it that keep per-hub
  state (the thread pool) hear of a hub's destroy and of a fork through
  ``register_lifecycle_hooks``, so no import ever points back at them.
"""

from __future__ import annotations

import errno
import gc
import heapq
import itertools
import os
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from greenlet import GreenletExit
from greenlet import greenlet as RawGreenlet

from . import _originals
from ._asyncio_state import leave as _leave_asyncio
from ._clock import TimeWarp
from ._hubcounts import HubCounts, HubMonitor
from ._io_base import READ, WRITE, FdTable
from ._mypyc import mypyc_attr
from ._signalwait import signal_to_come
from ._waiter import (
    TIMED_OUT,
    BlockingSwitchOutError,
    HubState,
    Waiter,
    _switch,
    getcurrent,
    keeps_greenlet_switch,
)
from ._waiter import current as _current
from ._waiter import deliver as _deliver
from ._waker import Waker

# getcurrent, _switch and _deliver are _waiter's: Final there, so compiled code reads them as C statics.

__all__ = [
    "BlockingSwitchOutError",
    "Callback",
    "ConcurrentObjectUseError",
    "Hub",
    "HubStatistics",
    "LoopExit",
    "TimerHandle",
    "get_hub",
    "idle",
    "notify_closing",
    "register_lifecycle_hooks",
    "sleep",
    "wait_readable",
    "wait_writable",
]

if TYPE_CHECKING:
    from ._hubstats import HubStatistics


def _module_getattr(name: str) -> Any:
    """``HubStatistics``, imported when first asked for: ``dataclasses`` is slow to import."""
    if name == "HubStatistics":
        from ._hubstats import HubStatistics

        return HubStatistics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Bound by assignment, not ``def __getattr__``: compiled, a module-level def is in the module
# before its globals exist, and the compiled import asks the module for ``__file__`` first, which
# would call this function on the missing globals and crash the interpreter.
__getattr__ = _module_getattr


class LoopExit(Exception):
    """Raised in the waiting task when nothing can ever wake it."""


@mypyc_attr(native_class=False)
class ConcurrentObjectUseError(AssertionError):
    """gevent's name for two tasks waiting on one fd; corun allows that, so nothing raises it.

    Kept so that code written for gevent that catches it still imports.
    """


def _default_backend(waker_fd: int) -> FdTable:
    if _originals.epoll is not None:
        from ._io_epoll import EpollIO

        return EpollIO(waker_fd)
    from ._io_selectors import SelectorsIO

    return SelectorsIO(waker_fd)


class Callback:
    """A function queued with ``run_callback``; ``cancel()`` stops it running."""

    __slots__ = ("args", "func")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.func: Callable[..., Any] | None = func
        self.args = args

    def cancel(self) -> None:
        """Do not run it (a no-op once it ran)."""
        self.func = None

    @property
    def pending(self) -> bool:
        """True until it has run or was cancelled."""
        return self.func is not None

    def _fire(self) -> None:
        func = self.func
        if func is not None:
            self.func = None
            func(*self.args)


@mypyc_attr(native_class=False)
class TimerHandle(list):
    """A timer in the hub's heap: ``[deadline, seq, func, args, hub]``.

    A list so that the heap compares deadlines (then sequence numbers) in C.
    ``hub`` becomes None when the timer leaves the heap to fire.
    """

    __slots__ = ()

    def cancel(self) -> None:
        """Stop the timer; a no-op once it fired or was cancelled."""
        if self[2] is not None:
            self[2] = None
            hub = self[4]
            if hub is not None:  # still in the heap: count it for compaction
                hub._timer_cancelled()

    @property
    def pending(self) -> bool:
        """True until the timer fired or was cancelled."""
        return self[2] is not None

    @property
    def deadline(self) -> float:
        """When the timer fires, on the hub's clock."""
        return float(self[0])


_CLOSED = object()


# A greenlet subclass: compiled as an ordinary Python class whose methods are compiled.
@mypyc_attr(native_class=False, allow_interpreted_subclasses=True)
class Hub(RawGreenlet):
    """The event loop of one OS thread: ready callbacks, timers, I/O, wake-ups."""

    # The readiness back end, kept on the hub's state where the loop reads it
    # natively: a property set below the class, as mypyc compiles no property
    # setter in a greenlet subclass.
    io: FdTable

    def _get_io(self) -> FdTable:
        return self.state.io

    def _set_io(self, io: FdTable) -> None:
        self.state.io = io

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        root = getcurrent()
        while root.parent is not None:
            root = root.parent
        RawGreenlet.__init__(self, parent=root)  # not super(): a compiled greenlet subclass has none
        self.clock: Callable[[], float] = clock or _originals.monotonic
        # A clock that is not real time (corun.testing.VirtualClock) says how long a poll really waits.
        self._warp = clock if isinstance(clock, TimeWarp) else None
        self._waker = Waker()
        # What waits and wake-ups read, natively when compiled; the same objects as the attributes below.
        self.state = state = HubState(self, _originals.get_ident(), _default_backend(self._waker.read_fd))
        self.thread_ident = state.thread_ident
        # (function, args) pairs; tuples because this is the hottest path.
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = state.ready
        self._threadsafe: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[TimerHandle] = []
        self._cancelled_timers = 0
        self._seq = itertools.count()
        self._idle_waiters: list[Waiter] = []
        # Tasks in join(), with their deadlines (None: no deadline).
        self._joiners: list[tuple[Waiter, float | None]] = []
        # Work in flight in other threads (thread pool jobs) whose results will
        # come back through run_callback_threadsafe: not a deadlock yet.
        self.pending = 0
        self.destroyed = False
        # Calls queued by call_urgent that have not run yet.  A task that
        # resumes from a wait tests it and then calls run_urgent; a plain
        # attribute, because that test is made on every wake-up.
        self.urgent_calls: list[Callable[[], Any]] = state.urgent_calls
        # Passes of the loop, callbacks run and live tasks, for statistics() and the monitor.
        self.counts = HubCounts()
        # What watches this hub from another thread (corun.monitor), if anything.
        self.monitor: HubMonitor | None = None
        self._run_hooks(_create_hooks, "on create")
        # The due timers and the waiters woken by a poll while they are run
        # (the next one last): out of the heap, still work to be done.
        self._due_timers: list[TimerHandle] = []
        self._woken: list[Any] = []

    def __repr__(self) -> str:
        return (
            f"<Hub thread={self.thread_ident} ready={len(self._ready)} "
            f"timers={len(self._timers) - self._cancelled_timers} io_waits={self.io.waiting}>"
        )

    def statistics(self) -> HubStatistics:
        """The work the hub holds and has done; loop lag and task run time while a monitor watches it."""
        from ._hubstats import HubStatistics  # on first use: it is a dataclass

        cancelled = self._cancelled_timers
        monitor = self.monitor
        return HubStatistics(
            len(self._ready),
            len(self._timers) - cancelled,
            cancelled,
            self.io.waiting,
            self.pending,
            self.counts.passes,
            self.counts.callbacks_run,
            self.counts.live_tasks,
            self.io.statistics()["fds"],
            None if monitor is None else monitor.loop_lag(),
            None if monitor is None else monitor.task_run_time(),
        )

    # -- scheduling ---------------------------------------------------------

    def run_callback(self, func: Callable[..., Any], *args: Any) -> Callback:
        """Run ``func(*args)`` on the hub's next pass (this thread only)."""
        cb = Callback(func, args)
        self._ready.append((cb._fire, ()))
        return cb

    def run_callback_threadsafe(self, func: Callable[..., Any], *args: Any) -> Callback:
        """Run ``func(*args)`` on this hub, called from any thread."""
        cb = Callback(func, args)
        self._threadsafe.append((cb._fire, ()))
        self._waker.wake()
        return cb

    def call_urgent(self, func: Callable[[], Any]) -> None:
        """Run ``func()`` in a task of its own before the next task the hub resumes goes on.

        Safe from a signal handler that interrupted the hub anywhere: it only
        appends to a list and to the ready queue.  The task that resumes
        next first lets ``func`` run until it ends or waits; a task of its
        own is scheduled too, in case none resumes soon.  ``func`` reports
        its own errors.
        """
        urgent = self.urgent_calls
        urgent.append(func)
        if len(urgent) == 1:
            runner = RawGreenlet(self._drain_urgent, parent=self)
            self._ready.append((runner.switch, ()))

    def _drain_urgent(self) -> None:
        urgent = self.urgent_calls
        while urgent:
            urgent.pop(0)()

    def run_urgent(self) -> None:
        """In a task just resumed: let the urgent calls run first, then go on once the hub comes back.

        A task that leaves a wait calls it when ``urgent_calls`` is not empty.
        """
        # A fresh runner: the scheduled one may be parked in an urgent call,
        # and only its own ready entry may ever resume it.
        runner = RawGreenlet(self._drain_urgent, parent=self)
        back = (getcurrent().switch, ())
        self._ready.append(back)
        try:
            runner.switch()
        except BaseException:
            try:
                self._ready.remove(back)
            except ValueError:
                pass
            raise

    def wake(self, waiter: Waiter, value: Any = None) -> None:
        """Reschedule a parked task of this hub: it resumes with ``value`` on the next pass.

        The way to wake a task from this hub's own thread (see
        ``corun/_waiter.py``); a no-op if the task has left that wait by then.
        """
        self._ready.append((_deliver, (waiter, value)))

    def wake_threadsafe(self, waiter: Waiter, value: Any = None) -> None:
        """``wake`` from any OS thread, or from a signal handler: also brings the hub out of its poll."""
        self._threadsafe.append((_deliver, (waiter, value)))
        self._waker.wake()

    def call_later(self, seconds: float, func: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``func(*args)`` after ``seconds`` on the hub's clock."""
        timer = TimerHandle((self.clock() + seconds, next(self._seq), func, args, self))
        heapq.heappush(self._timers, timer)
        return timer

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        timers = self._timers
        # Rebuild once cancelled timers are the majority, so a loop of
        # cancelled timeouts cannot grow the heap without bound.
        if self._cancelled_timers > 64 and self._cancelled_timers * 2 > len(timers):
            # In place: the loop holds on to the list (see _run_once).
            timers[:] = [t for t in timers if t[2] is not None]
            heapq.heapify(timers)
            self._cancelled_timers = 0

    # -- I/O readiness ------------------------------------------------------

    def wait_readable(self, fd: int, timeout: float | None = None, *, notifies_close: bool = False) -> None:
        """Park the current task until ``fd`` is readable.

        Any number of tasks may wait on one fd; readiness wakes them all, and
        each retries its own syscall.

        Args:
            notifies_close: the caller promises that ``notify_closing(fd)`` runs
                before every close of ``fd`` (corun's own sockets do); the hub
                then trusts a registration it kept, saving a syscall per wait.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            OSError: (EBADF) the fd was closed by another task meanwhile.
        """
        self._wait_fd(fd, READ, timeout, notifies_close)

    def wait_writable(self, fd: int, timeout: float | None = None, *, notifies_close: bool = False) -> None:
        """Park the current task until ``fd`` is writable (see ``wait_readable``)."""
        self._wait_fd(fd, WRITE, timeout, notifies_close)

    def _wait_fd(self, fd: int, event: int, timeout: float | None, notifies_close: bool = False) -> None:
        w = Waiter(self, ("fd", fd, "readable" if event == READ else "writable"))
        io = w.state.io
        io.add(fd, event, w, notifies_close)
        try:
            result = w.get(timeout)
        finally:
            io.remove(fd, event, w)
        if result is TIMED_OUT:
            raise TimeoutError(f"timed out waiting for fd {fd}")
        if result is _CLOSED:
            raise OSError(errno.EBADF, f"fd {fd} was closed while this task waited on it")

    def watch_fd(self, fd: int, event: int, waiter: Waiter) -> None:
        """Wake ``waiter`` when ``fd`` is ready for ``event`` (READ or WRITE); pair with ``unwatch_fd``.

        For a wait on several fds at once (``select``), where one waiter is
        registered for each; ``wait_readable`` is the one-fd form.

        Raises:
            OSError: the fd cannot be watched (closed; ``PermissionError`` for a regular file).
        """
        self.io.add(fd, event, waiter)

    def unwatch_fd(self, fd: int, event: int, waiter: Waiter) -> None:
        """Stop waking ``waiter`` for ``fd`` (a no-op if it was woken already)."""
        self.io.remove(fd, event, waiter)

    def nothing_else_can_run(self) -> bool:
        """True when no task but the caller could ever run (no callbacks, timers, fd waits, thread work).

        A task about to block the OS thread in a call with no cooperative
        form (a process-shared semaphore) may then do so without holding up anyone.
        """
        return not (
            self._ready
            or self._threadsafe
            or self.urgent_calls
            or self._idle_waiters
            or self._joiners
            or self.io.waiting
            or self.pending
            or len(self._timers) > self._cancelled_timers
            or self._due_timers
            or self._woken
        )

    def notify_closing(self, fd: int) -> None:
        """Call before closing ``fd``: unregister it and wake its waiters with EBADF."""
        for w in self.io.close_fd(fd):
            self.wake(w, _CLOSED)

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        """The loop; never returns while the hub lives."""
        while True:
            try:
                self._run_once()
            except GreenletExit:
                # Only the hub itself being destroyed delivers this here.
                raise
            except BaseException as exc:
                # Callbacks report their own errors, so this came from a
                # signal handler while the hub polled (Ctrl-C, an alarm) or
                # from the loop itself: the main task gets it, as it would
                # without corun, instead of it being printed and lost.
                self.parent.throw(exc)

    # One pass of the loop.  Invariants:
    # - it runs only the callbacks that were ready when the pass began, so a
    #   task that yields in a loop (sleep(0)) cannot starve I/O or timers;
    # - it is the only place callbacks, timer functions and I/O wake-ups run;
    # - it never waits in the OS while a callback is ready;
    # - when nothing can ever make progress, it reports the hang instead of
    #   sleeping forever.
    def _run_once(self) -> None:
        ready = self._ready
        popleft = ready.popleft
        threadsafe = self._threadsafe
        handle_failure = self._callback_failed
        counts = self.counts
        # Read once per pass, not per batch of callbacks: only ever changed in place.
        timers = self._timers
        state = self.state

        while True:
            # 1. Ready callbacks, as many as were queued when the pass began.
            n = len(ready)
            counts.passes += 1
            counts.callbacks_run += n
            for _ in range(n):
                try:
                    func, args = popleft()
                except IndexError:
                    break  # emptied by a fork in one of them (drop_scheduled_work)
                try:
                    func(*args)
                except BaseException as exc:
                    if func is _deliver:
                        handle_failure(args[0], exc, "wake-up of")  # named by its waiter
                    elif func is _switch:
                        handle_failure(args[0], exc, "resumption of")  # named by its task
                    else:
                        handle_failure(func, exc)
            while threadsafe:
                ready.append(threadsafe.popleft())
            while timers and timers[0][2] is None:
                heapq.heappop(timers)
                self._cancelled_timers -= 1
            if not ready or state.io.waiting:
                break
            # More is ready and there is no fd to poll: skip the syscall and
            # take the next pass at once, firing any timers that are due.
            if timers:
                self._fire_timers()

        # 2. How long the OS may keep us.
        io = state.io
        if ready:
            timeout = 0.0
        elif self._idle_waiters:
            self._wake_idle()
            timeout = 0.0
        elif timers:
            timeout = max(0.0, timers[0][0] - self.clock())
        elif io.waiting or self.pending:
            timeout = -1.0
        elif self._joiners:
            # Only join() calls are left, and no work is what they wait for.
            self._release_joiners()
            return
        elif (left := signal_to_come()) is not None:
            # Only a signal can come; the program's handler may then raise
            # or wake a task (see _signalwait).
            timeout = left
        else:
            self._report_deadlock()
            return
        if self._joiners:
            timeout = self._cap_by_join_deadlines(timeout)

        # 3. Poll the OS; wake the tasks whose fds are ready.
        warp = self._warp
        real = timeout if warp is None else warp.real_timeout(timeout, self.pending)
        woken, waker_fired = io.poll(real)
        if warp is not None and not (woken or waker_fired):
            warp.skip(timeout)  # every task waits and nothing came: time jumps to the next deadline
        if waker_fired:
            self._waker.drain()
            while threadsafe:
                ready.append(threadsafe.popleft())
        woken.reverse()
        self._woken = woken
        while woken:
            w = woken.pop()
            try:
                w.switch(None)
            except BaseException as exc:
                handle_failure(w.switch, exc)

        # 4. Timers that are due.
        self._fire_timers()
        if self._joiners:
            self._expire_joiners()

    def _fire_timers(self) -> None:
        timers = self._timers
        if not timers:
            return
        now = self.clock()
        due = []
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)
            if timer[2] is None:
                self._cancelled_timers -= 1
            else:
                # Out of the heap now: a cancel by an earlier timer of this
                # batch must not count it among the heap's cancelled timers.
                timer[4] = None
                due.append(timer)
        due.reverse()
        self._due_timers = due
        while due:
            timer = due.pop()
            func = timer[2]
            if func is None:  # cancelled by an earlier timer of this batch
                continue
            timer[2] = None
            try:
                func(*timer[3])
            except BaseException as exc:
                self._callback_failed(func, exc)

    def _callback_failed(self, func: Any, exc: BaseException, what: str = "callback") -> None:
        if isinstance(exc, GreenletExit) and getcurrent() is self:
            raise exc
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self.parent.throw(exc)
            return
        self.handle_error(f"{what} {func!r}", type(exc), exc, exc.__traceback__)

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for w in waiters:
            self.wake(w)

    def _report_deadlock(self) -> None:
        message = self._describe_hang()
        if self._ready or self._threadsafe:
            # A signal handler ran meanwhile (an alarm that expired just
            # before the check): what it scheduled may wake a task.
            return
        self.parent.throw(LoopExit(message))

    def _describe_hang(self) -> str:
        waits = [
            o for o in gc.get_objects() if isinstance(o, Waiter) and o.hub is self and o.greenlet is not None
        ]
        if not waits:
            return f"would block forever: no task can be woken {_NOTHING_LEFT}"
        lines = [f"would block forever: nothing is left that could wake these tasks {_NOTHING_LEFT}:"]
        for w in waits:
            lines.append(f"  {w.greenlet!r} waits on {w.describe()}")
        return "\n".join(lines)

    # -- errors -------------------------------------------------------------

    def handle_error(self, context: object, exc_type: Any, exc: Any, tb: Any) -> None:
        """Print an error that nobody will otherwise see, once, to stderr."""
        stream = sys.stderr
        try:
            import traceback  # at the first error, not at start-up

            traceback.print_exception(exc_type, exc, tb, file=stream)
            stream.write(f"{context} failed with {exc_type.__name__}\n\n")
            stream.flush()
        except Exception:  # noqa: S110 - a broken stderr must not kill the loop
            pass

    # -- lifecycle ----------------------------------------------------------

    def join(self, timeout: float | None = None) -> bool:
        """Run the loop until it has nothing left to do; False on timeout."""
        w = Waiter(self, "the hub to run out of work")
        # The deadline stays out of the timer heap: a timer there would itself
        # count as work left, and join would always wait out its timeout.
        entry = (w, None if timeout is None else self.clock() + timeout)
        self._joiners.append(entry)
        try:
            return w.get() is not TIMED_OUT
        finally:
            if entry in self._joiners:
                self._joiners.remove(entry)

    def _release_joiners(self) -> None:
        joiners, self._joiners = self._joiners, []
        for w, _ in joiners:
            self.wake(w, True)

    def _cap_by_join_deadlines(self, timeout: float) -> float:
        deadlines = [d for _, d in self._joiners if d is not None]
        if not deadlines:
            return timeout
        left = max(0.0, min(deadlines) - self.clock())
        return left if timeout < 0 else min(timeout, left)

    def _expire_joiners(self) -> None:
        now = self.clock()
        for entry in [e for e in self._joiners if e[1] is not None and e[1] <= now]:
            self._joiners.remove(entry)
            self.wake(entry[0], TIMED_OUT)

    def reinit(self) -> None:
        """After fork, in the child: new OS resources, then the ``after_fork_in_child`` hooks."""
        old = self._waker
        self._waker = Waker()
        old.close()
        self.io.reinit(self._waker.read_fd)
        self.thread_ident = self.state.thread_ident = _originals.get_ident()
        self._threadsafe.clear()
        self._run_hooks(_after_fork_hooks, "after fork")

    def drop_scheduled_work(self) -> list[Any]:
        """In a forked child: forget every callback, timer and fd wait the parent's tasks left.

        Returns what was dropped; the caller keeps it referenced so that
        collecting it never runs a parent task's ``finally`` in the child.
        """
        dropped: list[Any] = [list(self._ready), list(self.urgent_calls)]
        self._ready.clear()
        self.urgent_calls.clear()
        for timer in self._timers:
            timer[4] = None  # out of the heap: a later cancel() must not count it
        dropped.append(list(self._timers))
        self._timers.clear()  # in place: the loop holds on to the list (see _run_once)
        self._cancelled_timers = 0
        # Emptied in place: the loop suspended in this fork runs what is left of them.
        dropped.extend([list(self._due_timers), list(self._woken)])
        self._due_timers.clear()
        self._woken.clear()
        self._idle_waiters = []
        self._joiners = []
        dropped.extend(self.io.forget_all())
        return dropped

    def destroy(self) -> None:
        """Stop this hub and release its fds; the thread gets a new one on next use."""
        if self.destroyed:
            return
        # First, while the hub still works: what is built on it may need it to let go.
        self._run_hooks(_destroy_hooks, "on destroy")
        if self and getcurrent() is not self:
            try:
                self.throw(GreenletExit)
            except GreenletExit:
                pass
        self._release_fds()
        _forget(self)
        if getattr(_local, "hub", None) is self:
            del _local.hub
        release = getattr(_local, "release_at_thread_exit", None)
        if release is not None and release.hub is self:
            del _local.release_at_thread_exit

    def _release_fds(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.io.close()
            self._waker.close()

    def _run_hooks(self, hooks: list[Callable[[Hub], object]], when: str) -> None:
        for hook in list(hooks):
            try:
                hook(self)
            except Exception as exc:  # one failing hook must not keep the others from running
                self.handle_error(f"hub hook {hook!r} {when}", type(exc), exc, exc.__traceback__)


setattr(  # noqa: B010
    Hub,
    "io",
    property(Hub._get_io, Hub._set_io, doc="The readiness back end: the fds its tasks wait on."),
)


# What modules built on the hub asked to hear (see register_lifecycle_hooks).
_create_hooks: list[Callable[[Hub], object]] = []
_destroy_hooks: list[Callable[[Hub], object]] = []
_after_fork_hooks: list[Callable[[Hub], object]] = []


def register_lifecycle_hooks(
    *,
    on_create: Callable[[Hub], object] | None = None,
    on_destroy: Callable[[Hub], object] | None = None,
    after_fork_in_child: Callable[[Hub], object] | None = None,
) -> None:
    """Have a module built on the hub hear of each hub's end and of a fork.

    Args:
        on_create: called with each new hub, in its thread, once it can run.
        on_destroy: called with each hub that is destroyed, before its tasks
            are ended and its fds closed.
        after_fork_in_child: called in a forked child with the forking
            thread's hub, once that hub has its new fds.
    """
    if on_create is not None:
        _create_hooks.append(on_create)
    if on_destroy is not None:
        _destroy_hooks.append(on_destroy)
    if after_fork_in_child is not None:
        _after_fork_hooks.append(after_fork_in_child)


@mypyc_attr(native_class=False)
class _ReleaseAtThreadExit:
    """Kept beside a thread's hub in the thread-local; closes the hub's fds when the thread ends.

    A hub suspended in a finished thread can never be switched into again,
    and the frame it is suspended in keeps it alive, so it is never collected.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # Kept here: at the interpreter's exit this may run after the module's globals are gone.
        self.current = _current

    def __del__(self) -> None:
        # The thread has ended: its ident may be given to a new thread, which must not get this hub.
        if self.current.state is self.hub.state:
            self.current.state = None
        self.hub._release_fds()


# Not Final, unlike getcurrent above: a C static would keep it past the module's
# teardown, to the interpreter's last clear, where the hub's finalizer fails.
_local = _originals.thread_local()


_NOTHING_LEFT = "(no callbacks, timers, I/O, thread work, alarm, signal handler)"


_get_ident: Final = _originals.get_ident


def get_hub() -> Hub:
    """The hub of the calling OS thread, created on first use."""
    # The thread-local costs a dict lookup per thread and one per name; the
    # hub last answered with, checked against the thread's ident, is cheaper.
    state = _current.state
    if state is not None and state.thread_ident == _get_ident():
        return state.hub
    try:
        hub: Hub = _local.hub
    except AttributeError:
        hub = _local.hub = Hub()
        _local.release_at_thread_exit = _ReleaseAtThreadExit(hub)
    _current.state = hub.state
    return hub


def _set_thread_hub(hub: Hub) -> None:
    """Make ``hub`` the calling thread's hub (``corun.testing`` swaps hubs)."""
    _local.hub = hub
    _current.state = hub.state


def _forget(hub: Hub) -> None:
    """``hub`` is no longer its thread's hub: ``get_hub`` must not answer with it."""
    if _current.state is hub.state:
        _current.state = None


def _peek_hub() -> Hub | None:
    return getattr(_local, "hub", None)


def _after_fork_in_child() -> None:
    # The other threads are gone from the child, and a new thread may get one of their idents.
    _current.state = None
    hub = getattr(_local, "hub", None)
    if hub is not None and not hub.destroyed:
        hub.reinit()


os.register_at_fork(after_in_child=_after_fork_in_child)


def sleep(seconds: float = 0) -> None:
    """Suspend the current task for ``seconds``; ``sleep(0)`` just lets others run."""
    state = _current.state
    if state is None or state.thread_ident != _get_ident():
        state = get_hub().state
    hub = state.hub
    if seconds > 0:
        Waiter(hub, "sleep").get(seconds)
        return
    # sleep(0) is the hottest wait of all and its only waker is its own ready
    # entry, so it skips the Waiter: if a kill or Timeout interrupts it first,
    # it takes that entry back out, which keeps the wake-up exactly-once.
    current = getcurrent()
    if current is hub:
        raise BlockingSwitchOutError("cannot sleep inside the hub; a hub callback must not block")
    # A task class's override of switch is the one called, as by every other wake-up.
    entry = (_switch, (current,)) if keeps_greenlet_switch(current) else (current.switch, ())
    # A collection the entry's allocation set off runs by the call below at
    # the latest (3.12 runs it at the next check, not at once), so that no
    # finalizer can wait between queueing the entry and parking and be
    # resumed by it in this park's place.
    back = _leave_asyncio()
    state.schedule(entry)
    try:
        _switch(hub)
    except BaseException:
        try:
            state.ready.remove(entry)
        except ValueError:
            pass
        raise
    finally:
        if back is not None:
            back()
    if state.urgent_calls:
        hub.run_urgent()


def idle() -> None:
    """Suspend the current task until the hub has nothing else ready to run."""
    hub = get_hub()
    w = Waiter(hub, "idle")
    hub._idle_waiters.append(w)
    try:
        w.get()
    finally:
        if w in hub._idle_waiters:
            hub._idle_waiters.remove(w)


def wait_readable(fd: int, timeout: float | None = None, *, notifies_close: bool = False) -> None:
    """Park the current task until ``fd`` is readable (see ``Hub.wait_readable``)."""
    get_hub()._wait_fd(fd, READ, timeout, notifies_close)


def wait_writable(fd: int, timeout: float | None = None, *, notifies_close: bool = False) -> None:
    """Park the current task until ``fd`` is writable (see ``Hub.wait_writable``)."""
    get_hub()._wait_fd(fd, WRITE, timeout, notifies_close)


def notify_closing(fd: int) -> None:
    """Unregister ``fd`` before closing it, waking its waiters with EBADF."""
    hub = _peek_hub()
    if hub is not None:
        hub.notify_closing(fd)
