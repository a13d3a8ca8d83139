"""The patch areas, declared once: everything else that lists them is derived from ``AREAS``.

An area is one part of the stdlib that patching makes cooperative, or leaves
alone.  Its name is a ``patch_all`` keyword, the name of a ``patch_<area>``
function and a runner option ``--no-<area>``; its description is that
function's docstring and that option's help.  Adding an area is adding one
``Area`` here (and its ``corun.patches`` modules).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["AREAS", "Area", "install_order", "names"]


class Area(NamedTuple):
    """One area: its name, the ``corun.patches`` modules it installs, and what it covers."""

    name: str
    # Installed in this order (a module may build on the one before it).
    modules: tuple[str, ...]
    # What the area covers, one line without a full stop: help text and docstring.
    description: str
    # Areas installed before this one when both are patched.
    after: tuple[str, ...] = ()


# In the order of ``patch_all``'s keywords, which is also the order areas are
# installed in, except where ``after`` asks for another one.
AREAS: tuple[Area, ...] = (
    Area("socket", ("socket",), "socket.socket and its helpers"),
    Area("dns", ("dns",), "name resolution (getaddrinfo, gethostbyname...), done in the thread pool"),
    Area("time", ("time",), "time.sleep, which suspends only the calling task"),
    Area("select", ("select", "selectors"), "select and selectors"),
    Area(
        "thread",
        ("thread", "threading", "multiprocessing", "sqlite3"),
        "_thread, threading and multiprocessing locks: threads start tasks, locks park them, "
        "sqlite3 connections keep to their thread",
    ),
    Area(
        "os",
        ("os", "io"),
        "os.fork, os.read and os.write on pipes and sockets, the waits for child processes, "
        "and files opened over pipes (open, os.fdopen, a piped sys.stdin)",
    ),
    # SSLSocket is rebuilt on the cooperative socket.
    Area("ssl", ("ssl",), "ssl sockets", after=("socket",)),
    Area("subprocess", ("subprocess",), "subprocess waits and pipes"),
    Area("signal", ("signal",), "signal handlers, run promptly while the hub waits"),
    Area("queue", ("queue",), "queue.SimpleQueue, Queue.put/get (the queues follow the thread area)"),
    Area(
        "psycopg",
        ("psycopg2", "psycopg"),
        "the PostgreSQL drivers psycopg2 and psycopg 3, now or once imported: their waits for the "
        "server park only the calling task, and a timed-out or killed query is cancelled",
    ),
    Area(
        "grpc",
        ("grpc",),
        "grpcio's synchronous client and server, now or once imported: completion-queue waits run "
        "in a thread pool, and the call of a task timed out or killed while waiting is cancelled",
    ),
)


def names() -> list[str]:
    """The area names, in declaration order."""
    return [area.name for area in AREAS]


def install_order(selected: Iterable[str]) -> list[str]:
    """The ``corun.patches`` modules of the ``selected`` areas, in the order they are installed.

    Declaration order, except that an area comes after the areas its
    ``after`` names.

    Raises:
        ValueError: an unknown area, or ``after`` naming an unknown area or
            making a cycle.
    """
    by_name = {area.name: area for area in AREAS}
    wanted = set(selected)
    unknown = wanted.difference(by_name)
    if unknown:
        raise ValueError(f"no such patch area: {', '.join(sorted(unknown))}")
    ordered: list[str] = []
    visiting: list[str] = []

    def place(area: Area) -> None:
        if area.name in ordered:
            return
        if area.name in visiting:
            raise ValueError(f"patch areas ordered in a cycle: {' -> '.join([*visiting, area.name])}")
        visiting.append(area.name)
        for name in area.after:
            if name not in by_name:
                raise ValueError(f"patch area {area.name!r} comes after unknown area {name!r}")
            place(by_name[name])
        visiting.pop()
        ordered.append(area.name)

    for area in AREAS:
        place(area)
    return [module for name in ordered if name in wanted for module in by_name[name].modules]
