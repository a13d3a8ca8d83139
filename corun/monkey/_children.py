"""multiprocessing's spawn and forkserver children start under the runner, with its parent's options.

Facts this module relies on:

- A ``fork`` child is a copy of its parent, patched as the parent is.  A
  ``spawn`` child, the ``forkserver`` server (whose forks run the children)
  and the resource tracker are new interpreters, started as
  ``[executable, *util._args_from_interpreter_flags(), "-c", code, ...]``,
  with ``util`` the module ``multiprocessing.util`` and the function
  looked up on it each time (CPython 3.10-3.13).  Appending
  ``-m corun <options>`` to those flags makes each child
  ``python -m corun <options> -c code``: patched before it imports
  anything, exactly as its parent's runner patched the parent, and then
  run as ``python -c code`` would be.
- ``multiprocessing.util`` is imported by programs that use
  multiprocessing, late or never; importing it here would run its import
  side effects (an ``atexit`` hook, ``process.ORIGINAL_DIR`` taken from the
  current directory) in every program.  So the change waits for its import,
  through a finder at the front of ``sys.meta_path``.
- An interpreter set with ``multiprocessing.set_executable`` may not have
  corun installed: its children start as they would without corun.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from corun._importhook import find_then

__all__ = ["start_children_alike"]

_MODULE = "multiprocessing.util"
_ATTRIBUTE = "_args_from_interpreter_flags"


def start_children_alike(options: Sequence[str]) -> None:
    """Make multiprocessing start its spawn and forkserver children as ``python -m corun *options``.

    Args:
        options: the runner's options that patch the child as this process
            was patched (``["--no-signal"]``).
    """
    if _MODULE in sys.modules:
        _change(sys.modules[_MODULE], list(options))
        return
    if not any(isinstance(finder, _UtilFinder) for finder in sys.meta_path):
        from . import _make_change

        # A new list rather than an insert, so that the original stays as it was.
        _make_change(("sys", "meta_path", [_UtilFinder(list(options)), *sys.meta_path]))


def _change(util: Any, options: list[str]) -> None:
    """Replace ``util._args_from_interpreter_flags`` (recorded in ``monkey.saved``)."""
    from . import _make_change, is_object_patched

    if not is_object_patched(_MODULE, _ATTRIBUTE):
        _make_change((_MODULE, _ATTRIBUTE, _under_runner(getattr(util, _ATTRIBUTE), options)))


def _under_runner(original: Callable[[], list[str]], options: list[str]) -> Callable[[], list[str]]:
    """The replacement: the interpreter's flags, then ``-m corun`` and ``options``."""

    def _args_from_interpreter_flags() -> list[str]:
        import os
        from multiprocessing import spawn

        args = original()
        executable = spawn.get_executable()
        if executable is None or os.fsdecode(executable) != sys.executable:
            return args
        return [*args, "-m", "corun", *options]

    _args_from_interpreter_flags.__doc__ = "The flags a child interpreter gets, then corun's runner."
    return _args_from_interpreter_flags


class _UtilFinder:
    """Changes ``multiprocessing.util`` once it is imported; finds nothing itself."""

    def __init__(self, options: list[str]) -> None:
        self.options = options

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        """The spec the other finders give ``multiprocessing.util``, which then makes the change, or None."""
        if name != _MODULE:
            return None
        return find_then(self, name, path, target, lambda module: _change(module, self.options))
