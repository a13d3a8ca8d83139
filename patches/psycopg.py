"""Cooperative twin of psycopg 3: wait functions that park the calling task, not the thread.

Facts this module relies on:

- psycopg calls libpq non-blocking and waits for the socket itself, through
  the functions in ``psycopg.waiting``, which ``Connection`` looks up by
  attribute on every wait (``waiting.wait``, ``waiting.wait_conn``).
  ``waiting`` picks them once, at import: the C ``wait_c``, which waits in C
  and so holds up every task, unless ``PSYCOPG_WAIT_FUNC`` names another or
  it recognises gevent.  Setting the attributes works whether psycopg was
  imported before patching or after (``__installed_on_import__``: patching
  never imports psycopg).  Versions before 3.2 call them otherwise and are
  left alone.
- A psycopg imported before patching took ``threading.Lock`` by name (each
  connection's lock); ``__repairs_captures_in__`` has its modules given the
  cooperative one, so tasks sharing a connection take turns.
- psycopg cancels and drains a query interrupted by ``KeyboardInterrupt`` or
  ``SystemExit``, and leaves one interrupted by anything else running, the
  connection stuck in a command ("another command is already in progress"
  from then on).  ``Connection.wait`` is wrapped to do the same for
  ``corun.Timeout``, ``GreenletExit`` (a kill) and the rest: the cancel
  request (``PQcancel``, which waits in C) goes from the thread pool, then
  the end of the command is read.  When the query has not ended within
  ``CANCEL_GRACE`` seconds, the connection is closed.
- COPY, large objects and the rest go through the same wait functions.
  Async connections wait through asyncio and are not touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from typing import Any

from corun import _originals
from corun._io_base import READ, WRITE
from corun._waiter import TIMED_OUT, Waiter
from corun.hub import get_hub

from .psycopg2 import CANCEL_GRACE, cancel_in_threadpool

__target__ = "psycopg.waiting"
__installed_on_import__ = "psycopg"
# Set by _after_patch, which first checks that this psycopg calls them as expected.
__implements__: list[str] = []
# Its modules that took threading.Lock (and selectors' DefaultSelector) by
# name, when imported before patching, get the cooperative ones.
__repairs_captures_in__ = ("psycopg",)
__all__ = ["psycopg_wait", "psycopg_wait_conn"]


def _wait_socket(fileno: int, wants: int, timeout: float | None) -> int:
    """Park until ``fileno`` is ready as psycopg's ``Wait`` value ``wants`` asks; return its ``Ready`` bits.

    psycopg's ``Wait``/``Ready`` bits are those of ``selectors``: 1 read, 2 write.
    Returns 0 when ``timeout`` passed first.
    """
    hub = get_hub()
    waiter = Waiter(hub, ("fd", fileno, "ready for PostgreSQL"))
    events = [event for bit, event in ((1, READ), (2, WRITE)) if wants & bit]
    watched = []
    try:
        for event in events:
            hub.watch_fd(fileno, event, waiter)
            watched.append(event)
        if waiter.get(timeout) is TIMED_OUT:
            return 0
    finally:
        for event in watched:
            hub.unwatch_fd(fileno, event, waiter)
    if len(events) == 1:
        return wants
    # Woken for one of the two: ask which, without waiting.
    assert _originals.poll is not None
    poller = _originals.poll()
    poller.register(fileno, READ | WRITE)
    ready = 0
    for _, mask in poller.poll(0):
        ready |= (1 if mask & READ else 0) | (2 if mask & WRITE else 0)
    # An error or hang-up reads as readable: libpq then reports it.
    return ready or 1


def _time_left(deadline: float | None, interval: float) -> float | None:
    """How long one wait may last: until the next ``interval`` tick or the ``deadline``."""
    hub = get_hub()
    tick = interval if interval and interval > 0 else None
    if deadline is None:
        return tick
    left = max(0.0, deadline - hub.clock())
    return left if tick is None else min(tick, left)


def psycopg_wait(
    gen: Generator[Any, Any, Any], fileno: int, interval: float = 0.0, timeout: float | None = None
) -> Any:
    """psycopg 3's ``waiting.wait``: run ``gen``, parking the task while it waits for ``fileno``.

    Like psycopg's own: ``gen`` is sent 0 (nothing ready) every ``interval``
    seconds, and ``psycopg.errors._WaitTimeout`` is raised after ``timeout``.
    """
    hub = get_hub()
    deadline = None if timeout is None else hub.clock() + timeout
    try:
        wants = next(gen)
        while True:
            ready = _wait_socket(fileno, wants, _time_left(deadline, interval))
            wants = gen.send(ready)
            if deadline is not None and hub.clock() >= deadline:
                raise _psycopg_errors()._WaitTimeout("wait timeout expired")
    except StopIteration as stop:
        return stop.value


def psycopg_wait_conn(
    gen: Generator[Any, Any, Any], interval: float = 0.0, timeout: float | None = None
) -> Any:
    """psycopg 3's ``waiting.wait_conn``: like ``psycopg_wait``, the fd coming from ``gen`` (connecting)."""
    hub = get_hub()
    deadline = None if timeout is None else hub.clock() + timeout
    try:
        fileno, wants = next(gen)
        while True:
            ready = _wait_socket(fileno, wants, _time_left(deadline, interval))
            fileno, wants = gen.send(ready)
            if deadline is not None and hub.clock() >= deadline:
                raise _psycopg_errors()._WaitTimeout("wait timeout expired")
    except StopIteration as stop:
        return stop.value


def _psycopg_errors() -> Any:
    return sys.modules["psycopg.errors"]


def _cooperative_connection_wait(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Connection.wait`` that also cancels a query interrupted by a timeout or a kill."""

    def wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, gen, *args, **kwargs)
        except (Exception, KeyboardInterrupt, SystemExit):
            # Errors, and the interruptions psycopg cancels itself.
            raise
        except BaseException:
            _cancel_psycopg_query(self, gen)
            raise

    wait.__name__ = wait.__qualname__ = "wait"
    wait.__doc__ = original.__doc__
    wait.__wrapped__ = original  # type: ignore[attr-defined]
    return wait


def _cancel_psycopg_query(conn: Any, gen: Any) -> None:
    """Cancel the query ``gen`` was running on ``conn`` and wait for its end, or close ``conn``."""
    pq = sys.modules["psycopg.pq"]
    pgconn = conn.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
        return
    errors = _psycopg_errors()
    try:
        cancel_in_threadpool(pgconn.get_cancel().cancel)
        # What the server sends back now ends the command: read it.
        psycopg_wait(gen, pgconn.socket, 0.1, CANCEL_GRACE)
    except errors.QueryCanceled:
        pass
    except BaseException as exc:
        # The query did not end (or the wait for it was interrupted): the
        # connection is in an unknown state, and closed rather than reused.
        pgconn.finish()
        if not isinstance(exc, Exception):
            raise
        return
    if pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
        pgconn.finish()


def _after_patch(waiting: Any) -> list[tuple[Any, ...]]:
    """The wait functions and the wrapped ``Connection.wait`` (for ``monkey`` to set)."""
    import inspect  # once psycopg is imported, not when patching

    connection = sys.modules["psycopg.connection"]
    if "interval" not in inspect.signature(waiting.wait_conn).parameters:
        return []  # psycopg before 3.2 calls its wait functions otherwise: left alone
    changes: list[tuple[Any, ...]] = []
    if waiting.wait is not psycopg_wait:
        changes.append(("psycopg.waiting", "wait", psycopg_wait))
        changes.append(("psycopg.waiting", "wait_conn", psycopg_wait_conn))
        changes.append(
            (
                "psycopg.connection",
                "Connection.wait",
                _cooperative_connection_wait(connection.Connection.wait),
            )
        )
    return changes
