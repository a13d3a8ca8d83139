"""Cooperative waits for PostgreSQL's C drivers: psycopg2's wait callback, psycopg 3's wait functions.

Facts this module relies on:

- Both drivers call libpq, which waits for its socket in C and so holds up
  every task, unless the driver is told how to wait.  psycopg2 is told
  through ``psycopg2.extensions.set_wait_callback``: libpq then runs
  non-blocking and the callback polls the connection.  psycopg 3's
  ``Connection`` calls ``psycopg.waiting.wait`` and ``wait_conn`` by attribute
  on every wait; ``waiting`` chooses them once, at import (the C ``wait_c``,
  unless ``PSYCOPG_WAIT_FUNC`` names another or it recognises gevent).
  Setting those attributes works whether psycopg was imported before
  patching or after.
- Importing a driver costs tens of milliseconds and patching must not, so a
  driver that is not imported yet is patched by an import hook, the moment
  its package has finished importing.
- In psycopg2's green mode libpq does not enforce ``connect_timeout``: only
  its blocking connect looks at the clock.  The callback enforces it, as
  libpq does: whole seconds, at least 2, none if 0 or less.
- psycopg2 closes a connection whose wait callback raised (its "green
  panic"), so a task killed or timed out mid-query cannot keep its
  connection.  Closing the socket does not stop the query on the server: a
  backend notices that its client has gone only when it writes to it.  So
  the callback cancels the query first.  ``PQcancel`` opens a connection of
  its own and waits for it in C: it runs in the thread pool.
- psycopg 3 cancels and drains a query interrupted by ``KeyboardInterrupt``
  or ``SystemExit``, and leaves one interrupted by anything else running,
  the connection stuck in a command ("another command is already in
  progress" from then on).  ``Connection.wait`` is wrapped to do the same for
  ``corun.Timeout``, ``GreenletExit`` (a kill) and the rest; when the query
  does not end within a few seconds of the cancel, the connection is closed.
- In green mode psycopg2 refuses what libpq can only do blocking: COPY
  (``copy_from``, ``copy_to``, ``copy_expert``), large objects, and
  replication connections raise ``ProgrammingError``.  psycopg 3 does all of
  them through the same wait functions.  Its asyncio connections are not
  touched.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Generator
from typing import Any

from corun import _originals
from corun._io_base import READ, WRITE
from corun._waiter import TIMED_OUT, Waiter
from corun.hub import get_hub
from corun.threadpool import get_threadpool

# What patching changes is ``sys.meta_path`` (the import hook); the drivers
# already imported are patched through ``_after_patch``.
__target__ = "sys"
__implements__: list[str] = []
# A psycopg imported before patching took threading.Lock (and selectors'
# DefaultSelector) by name: its modules get the cooperative ones.
__repairs_captures_in__ = ("psycopg",)
__all__ = ["install", "psycopg2_wait_callback", "psycopg_wait", "psycopg_wait_conn"]

# How long a cancelled query may take to end before its connection is closed.
CANCEL_GRACE = 5.0

# Each driver's package, and what patches it once imported.
_INSTALLERS: dict[str, Callable[[], list[tuple[Any, ...]]]] = {}


# -- psycopg2 --------------------------------------------------------------------


def psycopg2_wait_callback(conn: Any) -> None:
    """psycopg2's wait callback: poll ``conn``, parking the task while libpq waits for its socket.

    Raises:
        psycopg2.OperationalError: the connection was not made within its
            ``connect_timeout``.
    """
    # Imported already: the callback is psycopg2's.
    extensions = sys.modules["psycopg2.extensions"]
    psycopg2 = sys.modules["psycopg2"]
    OperationalError = psycopg2.OperationalError
    hub = get_hub()
    connecting = conn.status == extensions.STATUS_SETUP
    deadline = None
    if connecting:
        timeout = _connect_timeout(extensions.parse_dsn(conn.dsn).get("connect_timeout"))
        deadline = None if timeout is None else hub.clock() + timeout
    try:
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state not in (extensions.POLL_READ, extensions.POLL_WRITE):
                raise OperationalError(f"unexpected state from poll(): {state!r}")
            left = None if deadline is None else max(0.0, deadline - hub.clock())
            try:
                if state == extensions.POLL_READ:
                    hub.wait_readable(conn.fileno(), left)
                else:
                    hub.wait_writable(conn.fileno(), left)
            except TimeoutError:
                raise OperationalError("timeout expired") from None
    except BaseException as exc:
        # psycopg2 closes the connection when this raises: stop the query
        # first, unless the connection itself failed (then the query did too).
        if not connecting and not conn.closed and not isinstance(exc, psycopg2.Error):
            _cancel_in_threadpool(conn.cancel)
        raise


def _cancel_in_threadpool(cancel: Callable[[], Any]) -> None:
    """Call ``cancel`` in the thread pool and wait for it a while; its failure is not the caller's."""
    # The caller is already leaving with an exception of its own, which says
    # more; a cancel that failed leaves the query to end by itself.
    with contextlib.suppress(BaseException):
        get_threadpool().spawn(cancel).get(timeout=CANCEL_GRACE)


def _connect_timeout(value: Any) -> float | None:
    """libpq's reading of ``connect_timeout`` (or PGCONNECT_TIMEOUT): None for no limit."""
    if value is None:
        value = os.environ.get("PGCONNECT_TIMEOUT")
    if value is None:
        return None
    seconds = int(float(value))
    if seconds <= 0:
        return None
    return float(max(seconds, 2))


def _install_psycopg2() -> list[tuple[Any, ...]]:
    extensions = sys.modules["psycopg2.extensions"]
    original = extensions.get_wait_callback()
    if original is psycopg2_wait_callback:
        return []

    def apply() -> None:
        extensions.set_wait_callback(psycopg2_wait_callback)

    return [("psycopg2.extensions", "wait_callback", original, apply)]


_INSTALLERS["psycopg2"] = _install_psycopg2


# -- psycopg 3 -------------------------------------------------------------------


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
        _cancel_in_threadpool(pgconn.get_cancel().cancel)
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


def _install_psycopg() -> list[tuple[Any, ...]]:
    waiting = sys.modules["psycopg.waiting"]
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


_INSTALLERS["psycopg"] = _install_psycopg


# -- installing --------------------------------------------------------------------


def install(package: str) -> None:
    """Patch the driver ``package`` (``psycopg2`` or ``psycopg``), imported already."""
    for change in _INSTALLERS[package]():
        _make_change(change)


def _make_change(change: tuple[Any, ...]) -> None:
    if len(change) == 4:
        change[3]()
        return
    module_name, path, replacement = change
    owner: Any = sys.modules[module_name]
    owner_path, _, attr = path.rpartition(".")
    for part in owner_path.split(".") if owner_path else ():
        owner = getattr(owner, part)
    setattr(owner, attr, replacement)


class _DriverFinder:
    """Patches a driver the moment its package has finished importing, without importing it sooner."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _INSTALLERS:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is cls or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, name)
                return spec
        return None


class _PatchingLoader:
    """Loads a driver's package as its own loader would, then patches the driver."""

    def __init__(self, loader: Any, package: str) -> None:
        self.loader = loader
        self.package = package

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        install(self.package)

    def __getattr__(self, name: str) -> Any:
        # Resources, source and the rest, as the real loader has them.
        return getattr(self.loader, name)


def _after_patch(target: Any) -> list[tuple[Any, ...]]:
    """Patch the drivers imported already, and hook the import of the others (for ``monkey`` to apply)."""
    changes: list[tuple[Any, ...]] = []
    for package, installer in _INSTALLERS.items():
        if package in sys.modules:
            changes.extend(installer())
    if _DriverFinder not in sys.meta_path:
        # A new list rather than an insert, so that the original stays as it was.
        changes.append(("sys", "meta_path", [_DriverFinder, *sys.meta_path]))
    return changes
