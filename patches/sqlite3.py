"""Cooperative twin of :mod:`sqlite3`: ``check_same_thread`` tells the program's threads apart again.

Facts this module relies on:

- A connection made with ``check_same_thread=True`` (the default) may be used
  only in the thread that made it, and so may its cursors: the C module
  compares OS thread idents and raises ``ProgrammingError`` otherwise.  Every
  task runs on one OS thread, so under corun that check never fires, and a
  program that relies on it (or tests it) sees the other thread's use work.
- ``connect`` builds the connection through its ``factory``, a subclass of
  ``Connection``; ``Connection.execute`` and its siblings make their cursor by
  calling the ``cursor`` method.  So a subclass whose methods check first,
  and whose ``cursor`` makes cursors of a subclass that checks too, covers
  every use the C module checks.
- A task started with ``corun.spawn`` is not a thread the program started
  (``threading`` gives it a dummy thread), and programs written for green
  threads share one connection among such tasks, which one OS thread makes
  safe.  So the check compares only the main thread and ``threading.Thread``
  tasks, each by its ident, with the stdlib's words.
"""

from __future__ import annotations

import sqlite3 as _stdsqlite3
import threading
from collections.abc import Callable
from typing import Any

__target__ = "sqlite3"
__implements__ = ["connect"]
__all__ = ["connect"]

_original_connect = _stdsqlite3.connect

# connect()'s parameters that may come by position (3.10-3.13), after the database.
_POSITIONAL = (
    "timeout",
    "detect_types",
    "isolation_level",
    "check_same_thread",
    "factory",
    "cached_statements",
    "uri",
)

# The methods the C module checks the thread in, where this Python has them.
_CONNECTION_METHODS = (
    "__exit__",
    "backup",
    "blobopen",
    "close",
    "commit",
    "create_aggregate",
    "create_collation",
    "create_function",
    "create_window_function",
    "deserialize",
    "enable_load_extension",
    "execute",
    "executemany",
    "executescript",
    "getconfig",
    "getlimit",
    "iterdump",
    "load_extension",
    "rollback",
    "serialize",
    "set_authorizer",
    "set_progress_handler",
    "set_trace_callback",
    "setconfig",
    "setlimit",
)
_CURSOR_METHODS = (
    "__next__",
    "close",
    "execute",
    "executemany",
    "executescript",
    "fetchall",
    "fetchmany",
    "fetchone",
)


def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
    """``sqlite3.connect``, whose connection keeps to its thread, as ``check_same_thread`` says."""
    if len(args) > len(_POSITIONAL):
        return _original_connect(database, *args, **kwargs)  # the original says what is wrong
    named = dict(zip(_POSITIONAL, args, strict=False))
    if named.keys() & kwargs.keys():
        return _original_connect(database, *args, **kwargs)
    named.update(kwargs)
    factory = named.get("factory", _stdsqlite3.Connection)
    if not named.get("check_same_thread", True) or not _is_subclass(factory, _stdsqlite3.Connection):
        return _original_connect(database, *args, **kwargs)
    named["factory"] = _checking_connection(factory)
    return _original_connect(database, **named)


def _program_thread() -> int | None:
    """The ident of the calling task when it is the main thread or a ``threading.Thread``, else None."""
    ident = threading.get_ident()
    thread = threading._active.get(ident)  # type: ignore[attr-defined]
    if thread is None or isinstance(thread, threading._DummyThread):
        return None
    return ident


def _check(owner: int | None) -> None:
    if owner is None:
        return
    me = _program_thread()
    if me is not None and me != owner:
        raise _stdsqlite3.ProgrammingError(
            "SQLite objects created in a thread can only be used in that same thread. "
            f"The object was created in thread id {owner} and this is thread id {me}."
        )


def _guard(base: type, name: str, owner_of: Callable[[Any], int | None]) -> Callable[..., Any]:
    original = getattr(base, name)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        _check(owner_of(self))
        return original(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = original.__doc__
    return method


def _is_subclass(candidate: Any, base: type) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, base)


_connection_classes: dict[type, type] = {}
_cursor_classes: dict[type, type] = {}


def _checking_connection(factory: Any) -> type:
    """A subclass of ``factory`` whose methods, and cursors, check the calling thread first."""
    cls = _connection_classes.get(factory)
    if cls is not None:
        return cls

    base_init = factory.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base_init(self, *args, **kwargs)
        self._corun_thread = _program_thread()

    def cursor(self: Any, factory: Any = _stdsqlite3.Cursor) -> Any:
        _check(self._corun_thread)
        if _is_subclass(factory, _stdsqlite3.Cursor):
            factory = _checking_cursor(factory)
        return base_cursor(self, factory)

    base_cursor = factory.cursor
    namespace: dict[str, Any] = {"__init__": __init__, "cursor": cursor, "__module__": factory.__module__}
    for name in _CONNECTION_METHODS:
        if hasattr(factory, name):
            namespace[name] = _guard(factory, name, _connection_thread)
    cls = _connection_classes[factory] = type(factory.__name__, (factory,), namespace)
    cls.__qualname__ = factory.__qualname__
    return cls


def _checking_cursor(factory: type) -> type:
    """A subclass of the cursor class ``factory`` whose methods check the calling thread first."""
    cls = _cursor_classes.get(factory)
    if cls is not None:
        return cls
    namespace: dict[str, Any] = {"__module__": factory.__module__}
    for name in _CURSOR_METHODS:
        if hasattr(factory, name):
            namespace[name] = _guard(factory, name, _cursor_thread)
    cls = _cursor_classes[factory] = type(factory.__name__, (factory,), namespace)
    cls.__qualname__ = factory.__qualname__
    return cls


def _connection_thread(connection: Any) -> int | None:
    return getattr(connection, "_corun_thread", None)


def _cursor_thread(cursor: Any) -> int | None:
    return getattr(cursor.connection, "_corun_thread", None)


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """``sqlite3.dbapi2.connect``, the name ``sqlite3`` re-exports (for ``monkey`` to set)."""
    return [("sqlite3.dbapi2", "connect", connect)]
