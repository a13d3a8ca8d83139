"""Cooperative twin of psycopg2: a wait callback that parks the calling task, not the thread.

Facts this module relies on:

- psycopg2 calls libpq, which waits for its socket in C and so holds up
  every task, unless a wait callback is registered
  (``psycopg2.extensions.set_wait_callback``, process-wide): libpq then runs
  non-blocking and the callback polls the connection until it is done.
  Registering it works whether psycopg2 was imported before patching or
  after (``__installed_on_import__``: patching never imports psycopg2).
- In this green mode libpq does not enforce ``connect_timeout``: only its
  blocking connect looks at the clock.  The callback enforces it as libpq
  does (whole seconds, at least 2, none if 0 or less), over the whole
  connect rather than per host.  A connection being made has the status
  ``STATUS_SETUP``.
- psycopg2 closes a connection whose wait callback raised (its "green
  panic"), so a task killed or timed out mid-query cannot keep its
  connection.  Closing the socket does not stop the query on the server: a
  backend notices that its client has gone only when it writes to it.  So
  the callback cancels the query first.  ``PQcancel`` opens a connection of
  its own and waits for it in C: it runs in the thread pool.
- In green mode psycopg2 refuses what libpq can only do blocking: COPY
  (``copy_from``, ``copy_to``, ``copy_expert``), large objects and
  ``start_replication`` raise ``ProgrammingError``, and a ``COPY`` statement
  given to ``execute`` leaves the connection in the copy ("another command
  is already in progress").
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from corun.hub import get_hub

__target__ = "psycopg2.extensions"
__installed_on_import__ = "psycopg2"
# The callback is registered by _after_patch: it is no attribute of the module.
__implements__: list[str] = []
__all__ = ["CANCEL_GRACE", "psycopg2_wait_callback"]

# How long a cancel request may take before the task goes on without it.
CANCEL_GRACE = 5.0


def psycopg2_wait_callback(conn: Any) -> None:
    """psycopg2's wait callback: poll ``conn``, parking the task while libpq waits for its socket.

    Raises:
        psycopg2.OperationalError: the connection was not made within its
            ``connect_timeout``.
    """
    # Imported already: the callback is psycopg2's.
    extensions = sys.modules["psycopg2.extensions"]
    psycopg2 = sys.modules["psycopg2"]
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
                raise psycopg2.OperationalError(f"unexpected state from poll(): {state!r}")
            left = None if deadline is None else max(0.0, deadline - hub.clock())
            try:
                if state == extensions.POLL_READ:
                    hub.wait_readable(conn.fileno(), left)
                else:
                    hub.wait_writable(conn.fileno(), left)
            except TimeoutError:
                raise psycopg2.OperationalError("timeout expired") from None
    except BaseException as exc:
        # psycopg2 closes the connection when this raises: stop the query
        # first, unless the connection itself failed (then the query did too).
        if not connecting and not conn.closed and not isinstance(exc, psycopg2.Error):
            cancel_in_threadpool(conn.cancel)
        raise


def cancel_in_threadpool(cancel: Callable[[], Any]) -> None:
    """Call ``cancel`` in the thread pool and wait for it a while; its failure is not the caller's."""
    # The caller is already leaving with an exception of its own, which says
    # more; a cancel that failed leaves the query to end by itself.
    from corun.threadpool import get_threadpool  # a rare path: patching alone needs no thread pool

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


def _after_patch(target: Any) -> list[tuple[Any, ...]]:
    """Register the wait callback (for ``monkey`` to apply, recording the one it replaces)."""
    original = target.get_wait_callback()

    def apply() -> None:
        target.set_wait_callback(psycopg2_wait_callback)

    return [("psycopg2.extensions", "wait_callback", original, apply)]
