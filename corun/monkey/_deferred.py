"""Installs a twin once the program imports its module, and never imports the module sooner.

A twin that names a package in ``__installed_on_import__`` (psycopg2's, for
one), and a stdlib twin listed in ``STDLIB``, is installed at once when its
module is imported already.  Otherwise ``monkey`` registers it here, and the
import hook below installs it the moment the module has finished importing:
patching costs no import of a module the program may never use, and the
program may import it before or after patching alike.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from corun._importhook import find_then

__all__ = ["STDLIB", "ImportHook", "imported", "register", "waiting"]

#: The stdlib twins that wait for their module (each twin's ``__target__``),
#: when it is not imported yet.  These modules were most of what patching
#: imported (ssl's OpenSSL set-up, sqlite3's C module, subprocess's locale,
#: socket's enums), which a program that never uses them should not wait
#: for at start.  Their names are here because reading a twin's
#: ``__target__`` imports the twin, and the twin imports its module.
STDLIB: dict[str, str] = {
    "socket": "socket",
    "dns": "socket",
    "ssl": "ssl",
    "sqlite3": "sqlite3",
    "subprocess": "subprocess",
}

# Each package waited for, with what installs which twins once it is imported.
_waiting: dict[str, list[tuple[str, Callable[[str], None]]]] = {}


def register(package: str, twin: str, install: Callable[[str], None]) -> None:
    """Call ``install(twin)`` once ``package`` has been imported (``ImportHook`` must be on the meta path)."""
    entries = _waiting.setdefault(package, [])
    if all(name != twin for name, _ in entries):
        entries.append((twin, install))


def waiting() -> list[str]:
    """The modules whose twins wait for their import, in the order they were registered."""
    return list(_waiting)


def imported(module: ModuleType) -> None:
    """Install the twins that wait for ``module``, which has just been imported."""
    for twin, install in _waiting.pop(module.__name__, []):
        install(twin)


class ImportHook:
    """A meta path finder: finds a waited-for package as the others would, installing its twins after."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        """The spec the other finders give a waited-for package, which installs its twins; None for others."""
        if name not in _waiting:
            return None
        return find_then(cls, name, path, target, imported)
