"""Tasks: ``Greenlet`` and the functions that spawn, join, wait for and kill them.

A ``Greenlet`` is a child of its thread's hub: starting it queues a switch
into it, and when its function returns or raises, control falls back into the
hub.  The outcome is stored on the object (``value`` or ``exception``) and
every link is called from the hub afterwards, which is how ``join``, ``iwait``,
groups and pools learn about it.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextvars import copy_context
from functools import partial
from types import GenericAlias, TracebackType
from typing import Any, Generic, Protocol, TypeVar, overload

from greenlet import GreenletExit
from greenlet import greenlet as RawGreenlet

from ._mypyc import mypyc_attr
from ._runframe import give_run_a_frame
from ._waiter import TIMED_OUT, Waiter, getcurrent, task_class, throw_into
from .hub import Callback, Hub, TimerHandle, get_hub, idle, sleep
from .timeout import Timeout

# getcurrent is _waiter's: Final there, so compiled code reads it as a C static.

__all__ = [
    "Greenlet",
    "GreenletExit",
    "getcurrent",
    "idle",
    "iwait",
    "joinall",
    "kill",
    "killall",
    "sleep",
    "spawn",
    "spawn_later",
    "wait",
]

T = TypeVar("T")
W = TypeVar("W", bound="Linkable")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_RAW, _ANY, _VALUE, _EXCEPTION = range(4)
_counter = itertools.count(1)


class Linkable(Protocol):
    """Something ``iwait`` can wait for: a task, an Event, an AsyncResult."""

    def ready(self) -> bool: ...
    def rawlink(self, callback: Callable[[Any], Any]) -> None: ...
    def unlink(self, callback: Callable[[Any], Any]) -> None: ...


# A greenlet subclass: compiled as an ordinary Python class whose methods are compiled.
@mypyc_attr(native_class=False, allow_interpreted_subclasses=True)
class Greenlet(RawGreenlet, Generic[T]):
    """A task: a function running concurrently with others on the hub."""

    # Defaults live on the class: most tasks never change them, and each
    # attribute set in __init__ costs on every spawn.
    value: T | None = None
    _exc_info: ExcInfo | None = None
    _links: list[tuple[Callable[[Any], Any], int]] | None = None
    _start_event: Callback | TimerHandle | None = None
    _started = False
    _done = False
    _name: str | None = None
    # False when an owner (a TaskGroup) re-raises the failure itself.
    report_errors = True

    # Why nothing may be raised into this task from outside (the task running an
    # asyncio loop, which such an exception would end); None for ordinary tasks.
    refuses_interrupts: str | None = None

    def __init__(self, run: Callable[..., T] | None = None, *args: Any, **kwargs: Any) -> None:
        hub = get_hub()
        RawGreenlet.__init__(self, None, hub)
        if run is not None:
            self._run = run  # type: ignore[method-assign]
        elif type(self)._run is Greenlet._run:
            raise TypeError("Greenlet needs a function to run (or a subclass overriding _run)")
        self.args = args
        self.kwargs = kwargs
        # A task starts in a copy of its spawner's context, as asyncio's do.
        self.gr_context = copy_context()

    def _run(self) -> T:
        raise NotImplementedError  # pragma: no cover - replaced in __init__

    # -- identity -----------------------------------------------------------

    # A human-readable name, ``Greenlet-N`` unless one was given: a property set
    # below the class, as mypyc compiles no property setter in a greenlet subclass.
    name: str

    def _get_name(self) -> str:
        if self._name is None:
            self._name = f"Greenlet-{next(_counter)}"
        return self._name

    def _set_name(self, value: str) -> None:
        self._name = value

    def __repr__(self) -> str:
        if self._done:  # its function and arguments were dropped
            return f'<{type(self).__name__} "{self.name}" at {id(self):#x}:{self._state()}>'
        func = getattr(self._run, "__qualname__", None) or repr(self._run)
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        call = f"{func}({', '.join(args)})"
        if len(call) > 80:
            call = call[:77] + "..."
        return f'<{type(self).__name__} "{self.name}" at {id(self):#x}: {call}{self._state()}>'

    def _state(self) -> str:
        if self._done:
            if self._exc_info is not None:
                return f" failed with {type(self._exc_info[1]).__name__}"
            return " dead"
        if not self._started:
            return " not started"
        return ""

    # -- state --------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True once ``start`` or ``start_later`` was called."""
        return self._started

    @property
    def dead(self) -> bool:
        """True once the task has finished (returned, raised or been killed)."""
        return self._done

    def ready(self) -> bool:
        """True once the task has finished."""
        return self._done

    def successful(self) -> bool:
        """True if the task finished without raising (a kill counts as success)."""
        return self._done and self._exc_info is None

    @property
    def exception(self) -> BaseException | None:
        """The exception the task raised, or None."""
        return None if self._exc_info is None else self._exc_info[1]

    @property
    def exc_info(self) -> ExcInfo | None:
        """``(type, value, traceback)`` of the exception the task raised, or None."""
        return self._exc_info

    # -- starting -----------------------------------------------------------

    def start(self) -> None:
        """Schedule the task to run on the hub's next pass (no-op if started)."""
        if not self._started:
            self._started = True
            hub: Hub = self.parent
            hub.counts.live_tasks += 1
            self._start_event = hub.run_callback(self.switch)

    def start_later(self, seconds: float) -> None:
        """Schedule the task to run after ``seconds``."""
        if not self._started:
            self._started = True
            hub: Hub = self.parent
            hub.counts.live_tasks += 1
            self._start_event = hub.call_later(seconds, self.switch)

    @classmethod
    def spawn(cls, run: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
        """Create a task and start it."""
        g: Greenlet[T] = cls(run, *args, **kwargs)
        g.start()
        return g

    @classmethod
    def spawn_later(cls, seconds: float, run: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
        """Create a task and start it after ``seconds``."""
        g: Greenlet[T] = cls(run, *args, **kwargs)
        g.start_later(seconds)
        return g

    def run(self) -> None:
        self._start_event = None
        try:
            result = self._run(*self.args, **self.kwargs)
        except GreenletExit as exc:
            self._finish(exc)
        except BaseException:
            self._fail(sys.exc_info(), report=self.report_errors)  # type: ignore[arg-type]
        else:
            self._finish(result)
        finally:
            # A finished task must not keep its function (and whatever a bound
            # method holds, a socket say) alive for as long as it is referenced.
            self.__dict__.pop("_run", None)

    def _finish(self, value: T) -> None:
        self.value = value
        self._done = True
        if self._started:
            self.parent.counts.live_tasks -= 1
        self.args = ()
        self.kwargs = {}
        if self._links:
            self.parent.run_callback(self._notify_links)

    def _fail(self, exc_info: ExcInfo, report: bool) -> None:
        self._exc_info = exc_info
        self._done = True
        self.args = ()
        self.kwargs = {}
        hub: Hub = self.parent
        if self._started:
            hub.counts.live_tasks -= 1
        exc = exc_info[1]
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            # Surfaces in the thread's root task, as if raised there.
            hub.run_callback(throw_into, hub.parent, exc)
        elif report:
            hub.handle_error(self, *exc_info)
        if self._links:
            hub.run_callback(self._notify_links)

    # -- links --------------------------------------------------------------

    def rawlink(self, callback: Callable[[Greenlet[T]], Any]) -> None:
        """Call ``callback(self)`` from the hub when the task finishes (must not block)."""
        self._add_link(callback, _RAW)

    def link(self, callback: Callable[[Greenlet[T]], Any]) -> None:
        """Call ``callback(self)`` in a new task when this one finishes."""
        self._add_link(callback, _ANY)

    def link_value(self, callback: Callable[[Greenlet[T]], Any]) -> None:
        """Like ``link``, only if the task finishes successfully."""
        self._add_link(callback, _VALUE)

    def link_exception(self, callback: Callable[[Greenlet[T]], Any]) -> None:
        """Like ``link``, only if the task fails."""
        self._add_link(callback, _EXCEPTION)

    def unlink(self, callback: Callable[[Any], Any]) -> None:
        """Remove every link to ``callback``."""
        if self._links:
            self._links = [link for link in self._links if link[0] != callback]

    def _add_link(self, callback: Callable[[Any], Any], kind: int) -> None:
        if not callable(callback):
            raise TypeError(f"link callback must be callable, not {callback!r}")
        if self._links is None:
            self._links = []
        self._links.append((callback, kind))
        if self._done and len(self._links) == 1:
            self.parent.run_callback(self._notify_links)

    def _notify_links(self) -> None:
        ok = self._exc_info is None
        # Re-read the list each time: a callback may resume a joiner that
        # unlinks itself, which replaces ``self._links``; links left in a
        # stale copy would never be called, and later ones would get stuck.
        while self._links:
            callback, kind = self._links.pop(0)
            if kind == _RAW:
                try:
                    callback(self)
                except Exception:
                    self.parent.handle_error(f"link {callback!r} of {self!r}", *sys.exc_info())
            elif kind == _ANY or (kind == _VALUE) == ok:
                Greenlet(callback, self).start()

    # -- waiting ------------------------------------------------------------

    def join(self, timeout: float | None = None) -> None:
        """Wait until the task finishes, or ``timeout`` passes (no error then)."""
        if self._done:
            return
        hub = self._own_hub("join")
        if getcurrent() is self:
            raise RuntimeError(f"{self!r} cannot join itself")
        w = Waiter(hub, self)
        # A partial, not a closure: mypyc cannot compile closures in methods of a greenlet subclass.
        finished = partial(_wake_joiner, hub, w)
        if self._links is None:
            self._links = []
        self._links.append((finished, _RAW))
        try:
            w.get(timeout)
        finally:
            self.unlink(finished)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Return the task's result, or raise its exception.

        Raises:
            Timeout: the task was not finished (``block=False``) or not within
                ``timeout``.
        """
        if not self._done:
            if not block:
                raise Timeout(0)
            self.join(timeout)
            if not self._done:
                raise Timeout(timeout)
        if self._exc_info is not None:
            raise self._exc_info[1].with_traceback(self._exc_info[2])
        return self.value  # type: ignore[return-value]

    def kill(
        self,
        exception: type[BaseException] | BaseException = GreenletExit,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Raise ``exception`` in the task (GreenletExit by default).

        A task that has not started yet never runs.  With ``block``, waits
        until it has finished or ``timeout`` passed.
        """
        if self._done:
            return
        if self.refuses_interrupts:
            raise RuntimeError(f"{self!r} cannot be killed: {self.refuses_interrupts}")
        hub = self._own_hub("kill")
        exc = exception() if isinstance(exception, type) else exception
        if not self:
            # Never switched into: cancel the start and finish it here.
            if self._start_event is not None:
                self._start_event.cancel()
                self._start_event = None
            if not self._started:  # counted as live here, so that finishing it below balances
                self._started = True
                self.parent.counts.live_tasks += 1
            if isinstance(exc, GreenletExit):
                self._finish(exc)
            else:
                self._fail((type(exc), exc, None), report=False)
            return
        if getcurrent() is self:
            raise exc
        hub.run_callback(throw_into, self, exc)
        if block:
            self.join(timeout)

    def __await__(self) -> Generator[Any, None, T]:
        """Await the task from a coroutine: its result, or its exception.

        Cancelling the await kills the task and waits for it to end; a task
        killed from elsewhere gives the awaiter ``CancelledError``.
        """
        # A generator of a pure-Python module: a compiled one throws into the
        # awaited future with the three-argument throw() that Python 3.12 deprecates.
        from ._awaittask import await_task

        return await_task(self)

    def _own_hub(self, action: str) -> Hub:
        hub: Hub = self.parent
        if get_hub() is not hub:
            raise RuntimeError(
                f"cannot {action} {self!r} from another thread; it belongs to the hub of thread "
                f"{hub.thread_ident}"
            )
        return hub

    def __class_getitem__(cls, item: Any) -> Any:  # Greenlet[int] in annotations and at run time
        # Not super(): in a compiled greenlet subclass it does not reach Generic.
        return GenericAlias(cls, item)


setattr(  # noqa: B010
    Greenlet,
    "name",
    property(
        Greenlet._get_name,
        Greenlet._set_name,
        doc="A human-readable name, ``Greenlet-N`` unless one was given.",
    ),
)
# It keeps greenlet's own switch: wake-ups call that on its tasks without looking it up.
task_class.cls = Greenlet


def _wake_joiner(hub: Hub, w: Waiter, _task: object) -> None:
    hub.wake(w)


def spawn(func: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
    """Run ``func(*args, **kwargs)`` in a new task; return the task."""
    g: Greenlet[T] = Greenlet(func, *args, **kwargs)
    g.start()
    return g


def spawn_later(seconds: float, func: Callable[..., T], *args: Any, **kwargs: Any) -> Greenlet[T]:
    """Run ``func(*args, **kwargs)`` in a new task after ``seconds``."""
    g: Greenlet[T] = Greenlet(func, *args, **kwargs)
    g.start_later(seconds)
    return g


def iwait(objects: Iterable[W], timeout: float | None = None, count: int | None = None) -> Iterator[W]:
    """Yield each of ``objects`` as it becomes ready, until ``count`` or ``timeout``."""
    objs = list(objects)
    hub = get_hub()
    remaining = len(objs) if count is None else min(count, len(objs))
    if remaining <= 0:
        return
    arrived: deque[W] = deque()
    current: list[Waiter | None] = [None]

    def on_ready(obj: W) -> None:
        arrived.append(obj)
        w = current[0]
        if w is not None:
            current[0] = None
            hub.wake(w)

    for obj in objs:
        obj.rawlink(on_ready)
    deadline = None if timeout is None else hub.clock() + timeout
    try:
        while remaining > 0:
            if not arrived:
                w = current[0] = Waiter(hub, f"iwait on {len(objs)} objects")
                left = None if deadline is None else max(0.0, deadline - hub.clock())
                try:
                    if w.get(left) is TIMED_OUT:
                        return
                finally:
                    current[0] = None
                continue
            remaining -= 1
            yield arrived.popleft()
    finally:
        for obj in objs:
            obj.unlink(on_ready)


@overload
def wait(objects: None = None, timeout: float | None = None, count: int | None = None) -> bool: ...
@overload
def wait(objects: Iterable[W], timeout: float | None = None, count: int | None = None) -> list[W]: ...
def wait(objects: Iterable[W] | None = None, timeout: float | None = None, count: int | None = None) -> Any:
    """Wait for ``objects`` to become ready and return those that did.

    With no objects, run the hub until it has no work left (True) or
    ``timeout`` passed (False).
    """
    if objects is None:
        return get_hub().join(timeout)
    return list(iwait(objects, timeout, count))


def joinall(
    greenlets: Iterable[Greenlet[Any]],
    timeout: float | None = None,
    raise_error: bool = False,
    count: int | None = None,
) -> list[Greenlet[Any]]:
    """Wait for the tasks to finish; return those that did.

    Args:
        timeout: give up after this many seconds (no error).
        raise_error: raise the first failure as soon as it happens.
        count: return once this many have finished.
    """
    tasks = list(greenlets)
    if raise_error or count is not None:
        done = []
        for g in iwait(tasks, timeout, count):
            if raise_error and g.exception is not None:
                exc_info = g.exc_info
                assert exc_info is not None
                raise exc_info[1].with_traceback(exc_info[2])
            done.append(g)
        return done
    if timeout is None:
        for g in tasks:
            if not g._done:
                g.join()
        return tasks
    hub = get_hub()
    deadline = hub.clock() + timeout
    for g in tasks:
        if not g._done:
            left = deadline - hub.clock()
            if left <= 0:
                break
            g.join(left)
    return [g for g in tasks if g._done]


def kill(
    greenlet: Greenlet[Any],
    exception: type[BaseException] | BaseException = GreenletExit,
    block: bool = True,
    timeout: float | None = None,
) -> None:
    """Kill one task (see ``Greenlet.kill``)."""
    greenlet.kill(exception, block, timeout)


def killall(
    greenlets: Sequence[Greenlet[Any]] | Iterable[Greenlet[Any]],
    exception: type[BaseException] | BaseException = GreenletExit,
    block: bool = True,
    timeout: float | None = None,
) -> None:
    """Kill several tasks; with ``block``, wait until they have all finished."""
    tasks = list(greenlets)
    for g in tasks:
        g.kill(exception, block=False)
    if block:
        joinall(tasks, timeout)


# Compiled, run has no Python frame of its own; the monitor finds stacks by it.
give_run_a_frame(Greenlet)
