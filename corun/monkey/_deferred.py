"""Installs the twins of a third-party package once the program imports it, and never imports it sooner.

A twin that names a package in ``__installed_on_import__`` (psycopg2's, for
one) is installed at once when that package is imported already.  Otherwise
``monkey`` registers it here, and the import hook below installs it the
moment the package has finished importing: patching costs no import of a
driver the program may never use, and the program may import it before or
after patching alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

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
        if name not in _waiting:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is cls or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _InstallingLoader(spec.loader, name)
                return spec
        return None


class _InstallingLoader:
    """Loads a package with its own loader, then installs the twins waiting for it."""

    def __init__(self, loader: Any, package: str) -> None:
        self.loader = loader
        self.package = package

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        for twin, install in _waiting.pop(self.package, []):
            install(twin)

    def __getattr__(self, name: str) -> Any:
        # Resources, source and the rest, as the real loader has them.
        return getattr(self.loader, name)
