"""Finds the modules that captured a stdlib original before patching could replace it.

``from socket import socket`` binds the class itself in the importing module;
replacing ``socket.socket`` afterwards does not reach that binding, and a
class that already subclassed ``ssl.SSLContext`` keeps the original base.
Such code goes on blocking the whole thread, silently.  Patching cannot fix
that, but it can name the modules and say what to do.

The stdlib's own captures (``socketserver``, ``selectors``...) are the
patches modules' business (their ``_after_patch``), so stdlib and corun
modules are not reported.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["describe_late_captures"]

# CPython's test package is stdlib in every respect but is not listed as such.
_NOT_REPORTED = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names) | {"corun", "test"}


def describe_late_captures(
    replacements: list[tuple[str, str, Any]],
    *,
    ssl_imported_unpatched: bool = False,
    repaired: frozenset[str] = frozenset(),
) -> str | None:
    """The warning text for originals already captured elsewhere, or None if there are none.

    Args:
        replacements: ``(module name, attribute, original)`` for each
            attribute about to be replaced.
        ssl_imported_unpatched: ``ssl`` was imported before this patching
            began and will not be patched.
        repaired: top-level packages whose captures patching rebinds to the
            cooperative objects (a twin's ``__repairs_captures_in__``): not reported.
    """
    import builtins

    wanted: dict[int, str] = {}
    classes: list[tuple[type, str]] = []
    targets = set()
    for module_name, attr, original in replacements:
        targets.add(module_name)
        # An original that is also a builtin (socket.error is OSError) is
        # referenced everywhere for unrelated reasons; it says nothing.
        if not callable(original) or getattr(builtins, getattr(original, "__name__", ""), None) is original:
            continue
        wanted[id(original)] = f"{module_name}.{attr}"
        if isinstance(original, type):
            classes.append((original, f"{module_name}.{attr}"))

    lines = []
    for module_name, module in list(sys.modules.items()):
        top = module_name.partition(".")[0]
        if module_name in targets or top in _NOT_REPORTED or top in repaired:
            continue
        found = _captures_in(module_name, module, wanted, classes)
        if found:
            lines.append(f"  module {module_name!r}: {', '.join(found)}")

    if ssl_imported_unpatched and ("socket", "socket") in {(m, a) for m, a, _ in replacements}:
        lines.append(
            "  module 'ssl' was imported before socket was patched and is not patched itself: "
            "ssl.SSLSocket was built on the original socket.socket"
        )
    if not lines:
        return None
    return "\n".join(
        [
            "corun.monkey: patching came too late; these modules were imported first "
            "and keep the original, blocking objects:",
            *lines,
            "Call corun.monkey.patch_all() before importing anything else, "
            "or run the program with `python -m corun`.",
        ]
    )


def _captures_in(
    module_name: str, module: Any, wanted: dict[int, str], classes: list[tuple[type, str]]
) -> list[str]:
    """What in ``module``'s namespace is, or subclasses, one of the originals."""
    try:
        namespace = vars(module)
    except TypeError:  # sys.modules may hold objects that are not modules
        return []
    found = []
    for attr, value in list(namespace.items()):
        where = wanted.get(id(value))
        if where is not None:
            found.append(f"{attr} is {where}")
        # type(value), not isinstance: a lazy proxy's ``__class__`` may import on access.
        elif issubclass(type(value), type) and value.__module__ == module_name:
            # Reported where the class is defined, not in every module importing it.
            found.extend(
                f"class {attr} subclasses {where}"
                for original, where in classes
                if original in value.__mro__[1:]
            )
    return found
