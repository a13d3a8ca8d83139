"""Meta path finders that let the other finders find a module, then act on it once it is loaded."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["AfterLoader", "find_then"]


def find_then(finder: object, name: str, path: Any, target: Any, after: Callable[[ModuleType], None]) -> Any:
    """The spec the other finders give ``name``, whose loading then calls ``after(module)``.

    For a finder that changes a module once it is imported without finding
    anything itself: ``finder`` is left out of the search, and the module is
    found and loaded exactly as it would be without it.  None if no other
    finder finds ``name``.
    """
    for other in sys.meta_path:
        find_spec = getattr(other, "find_spec", None)
        if other is finder or find_spec is None:
            continue
        spec = find_spec(name, path, target)
        if spec is not None:
            if spec.loader is not None:
                spec.loader = AfterLoader(spec.loader, after)
            return spec
    return None


class AfterLoader:
    """Loads a module with its own loader, then calls ``after(module)``."""

    def __init__(self, loader: Any, after: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.after = after

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.after(module)

    def __getattr__(self, name: str) -> Any:
        # The rest of the loader's interface (get_source for tracebacks, resources...).
        return getattr(self.loader, name)
