"""Which core runs: the optional compiled build (setup.py) or the pure-Python sources.

Imported by the package before any other of its modules, it decides once:
the compiled extension modules sit next to their sources and Python's
default finder prefers an extension, so where the sources are wanted the
package's directory gets a finder that sees only them.  They are wanted
with ``CORUN_PURE_PYTHON=1`` and when a source was edited after the build
(the extension would run the old code).  The compiled modules call each
other directly, so they run all compiled or all from source.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader

__all__ = ["COMPILED_MODULES"]

# The modules setup.py compiles (one group), in the package's directory.
COMPILED_MODULES = (
    "_asyncio_state",
    "_event",
    "_hubbound",
    "_hubcounts",
    "_io_base",
    "_io_epoll",
    "_io_selectors",
    "_threadsync",
    "_waiter",
    "_waitqueue",
    "greenlet",
    "hub",
    "lock",
    "queue",
)


def _stale(directory: str) -> bool:
    for name in COMPILED_MODULES:
        try:
            edited = os.stat(os.path.join(directory, name + ".py")).st_mtime
        except OSError:
            continue
        for suffix in EXTENSION_SUFFIXES:
            try:
                if os.stat(os.path.join(directory, name + suffix)).st_mtime < edited:
                    return True
            except OSError:
                continue
    return False


def _prefer_sources() -> None:
    pure = bool(os.environ.get("CORUN_PURE_PYTHON"))
    for entry in sys.modules[__package__].__path__:
        if pure or _stale(entry):
            sys.path_importer_cache[entry] = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES))


_prefer_sources()
