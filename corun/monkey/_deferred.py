"""Installs the twins of a third-party package once the program imports it, and never imports it sooner.

A twin that names a package in ``__installed_on_import__`` (psycopg2's, for
one) is installed at once when that package is imported already.  Otherwise
``monkey`` registers it here, and the import hook below installs it the
moment the package has finished importing: patching costs no import of a
driver the program may never use, and the program may import it before or
after patching alike.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from corun._importhook import find_then

__all__ = ["ImportHook", "register"]

# Each package waited for, with what installs which twins once it is imported.
_waiting: dict[str, list[tuple[str, Callable[[str], None]]]] = {}


def register(package: str, twin: str, install: Callable[[str], None]) -> None:
    """Call ``install(twin)`` once ``package`` has been imported (``ImportHook`` must be on the meta path)."""
    entries = _waiting.setdefault(package, [])
    if all(name != twin for name, _ in entries):
        entries.append((twin, install))


class ImportHook:
    """A meta path finder: finds a waited-for package as the others would, installing its twins after."""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        """The spec the other finders give a waited-for package, which installs its twins; None for others."""
        if name not in _waiting:
            return None
        return find_then(cls, name, path, target, _install_waiting)


def _install_waiting(package: ModuleType) -> None:
    for twin, install in _waiting.pop(package.__name__, []):
        install(twin)
