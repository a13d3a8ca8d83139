"""Installs ``corun.patches`` into the running interpreter and remembers the originals.

Each ``corun.patches.<name>`` module is a cooperative twin of one stdlib
module: it names that module in ``__target__`` and the attributes it replaces
in ``__implements__``.  Patching sets those attributes on the module object
that is already imported (so ``import socket`` done earlier sees the new
ones), records every original in ``saved``, then calls the twin's optional
``_after_patch(target)``, which may do more set-up and returns the copies
other stdlib modules took at import as ``(module name, attribute,
replacement)``; those are replaced and recorded in ``saved`` too.

Imports here stay inside the functions: a module-level ``import socket``
would run before patching and could capture a name that is about to change.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import ModuleType

__all__ = [
    "LatePatchError",
    "MonkeyPatchWarning",
    "get_original",
    "is_module_patched",
    "is_object_patched",
    "patch_all",
    "patch_dns",
    "patch_module",
    "patch_os",
    "patch_queue",
    "patch_select",
    "patch_signal",
    "patch_socket",
    "patch_ssl",
    "patch_subprocess",
    "patch_thread",
    "patch_time",
    "saved",
]

# The areas ``patch_all`` knows, in the order it patches them, each with the
# ``corun.patches`` modules that make it up.  An area whose modules do not
# exist yet is skipped, so adding a patches module is all it takes to enable it.
_AREAS: dict[str, tuple[str, ...]] = {
    "os": ("os",),
    "time": ("time",),
    "thread": ("thread", "threading", "multiprocessing"),
    "socket": ("socket",),
    "dns": ("dns",),
    "select": ("select", "selectors"),
    "ssl": ("ssl",),
    "subprocess": ("subprocess",),
    "signal": ("signal",),
    "queue": ("queue",),
}

#: Every attribute replaced so far: ``saved[module_name][attribute] = original``.
#: Read it; do not change it.
saved: dict[str, dict[str, Any]] = {}

# Names of the patches modules already installed, so a second call does nothing.
_installed: list[str] = []


class _Removed:
    """Marks an attribute deleted while patched (a blocking variant with no cooperative twin)."""

    def __repr__(self) -> str:
        return "<removed while patched>"


_REMOVED: Any = _Removed()


class MonkeyPatchWarning(RuntimeWarning):
    """Patching came after some modules had already captured the blocking originals."""


class LatePatchError(RuntimeError):
    """With ``strict=True``: patching came too late, and nothing was patched."""


# -- the registry --------------------------------------------------------------


def get_original(module_name: str, name: str | Sequence[str]) -> Any:
    """The object ``module_name.name`` held before patching (the current one if never patched).

    Args:
        module_name: a module name, imported if it is not yet.
        name: one attribute name, or a list of them for a list of objects.

    Raises:
        AttributeError: the module has no such attribute and never had.
    """
    if isinstance(name, str):
        return _original(module_name, name)
    return [_original(module_name, n) for n in name]


def _original(module_name: str, name: str) -> Any:
    recorded = saved.get(module_name, {})
    if name in recorded:
        return recorded[name]
    import importlib

    return getattr(importlib.import_module(module_name), name)


def is_module_patched(name: str) -> bool:
    """Whether any attribute of the module ``name`` has been replaced."""
    return bool(saved.get(name))


def is_object_patched(module_name: str, name: str) -> bool:
    """Whether ``module_name.name`` has been replaced."""
    return name in saved.get(module_name, {})


# -- patching ------------------------------------------------------------------


def patch_all(
    socket: bool = True,
    dns: bool = True,
    time: bool = True,
    select: bool = True,
    thread: bool = True,
    os: bool = True,
    ssl: bool = True,
    subprocess: bool = True,
    signal: bool = True,
    queue: bool = True,
    strict: bool = False,
    **unknown: Any,
) -> None:
    """Make the blocking parts of the stdlib cooperative; call it before any other import.

    Each flag turns one area on or off.  An area corun has no cooperative
    version of yet is accepted and left alone.

    Args:
        strict: raise ``LatePatchError`` (patching nothing) instead of warning
            when modules imported earlier hold originals that patching replaces.

    Raises:
        TypeError: an unknown keyword; the message lists the valid ones.
        LatePatchError: with ``strict=True``, when patching comes too late.
    """
    if unknown:
        valid = ", ".join([*_AREAS, "strict"])
        bad = ", ".join(repr(k) for k in unknown)
        raise TypeError(f"patch_all() got unexpected keyword argument(s) {bad}; valid keywords are: {valid}")
    flags = {
        "socket": socket,
        "dns": dns,
        "time": time,
        "select": select,
        "thread": thread,
        "os": os,
        "ssl": ssl,
        "subprocess": subprocess,
        "signal": signal,
        "queue": queue,
    }
    names = [name for area, modules in _AREAS.items() if flags[area] for name in modules]
    _install(names, strict)


def patch_socket(*, strict: bool = False) -> None:
    """Make ``socket.socket`` and its helpers cooperative."""
    _install(_AREAS["socket"], strict)


def patch_dns(*, strict: bool = False) -> None:
    """Make name resolution (``socket.getaddrinfo``, ``gethostbyname``...) cooperative."""
    _install(_AREAS["dns"], strict)


def patch_ssl(*, strict: bool = False) -> None:
    """Make ``ssl`` sockets cooperative."""
    _install(_AREAS["ssl"], strict)


def patch_select(*, strict: bool = False) -> None:
    """Make ``select`` and ``selectors`` cooperative."""
    _install(_AREAS["select"], strict)


def patch_time(*, strict: bool = False) -> None:
    """Make ``time.sleep`` cooperative."""
    _install(_AREAS["time"], strict)


def patch_thread(*, strict: bool = False) -> None:
    """Make ``_thread`` and ``threading`` start tasks and use cooperative locks."""
    _install(_AREAS["thread"], strict)


def patch_queue(*, strict: bool = False) -> None:
    """Make ``queue.SimpleQueue`` cooperative (the other queues follow the thread area)."""
    _install(_AREAS["queue"], strict)


def patch_os(*, strict: bool = False) -> None:
    """Make ``os.fork`` and ``os.waitpid`` cooperative."""
    _install(_AREAS["os"], strict)


def patch_subprocess(*, strict: bool = False) -> None:
    """Make ``subprocess`` waits and pipes cooperative."""
    _install(_AREAS["subprocess"], strict)


def patch_signal(*, strict: bool = False) -> None:
    """Make ``signal`` handlers run promptly while the hub waits."""
    _install(_AREAS["signal"], strict)


def patch_module(name: str, *, strict: bool = False) -> bool:
    """Install ``corun.patches.<name>``; return False if there is no such module.

    Returns:
        True once the module is installed, by this call or an earlier one.
    """
    if not _exists(name):
        return False
    _install([name], strict)
    return True


def _exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"corun.patches.{name}") is not None


class _Plan:
    """What installing one patches module will do: (attribute, original, replacement) triples."""

    def __init__(self, name: str, patches: ModuleType, target: ModuleType) -> None:
        self.name = name
        self.patches = patches
        self.target = target
        self.changes: list[tuple[str, Any, Any]] = []


def _install(names: Iterable[str], strict: bool) -> None:
    """Install the named patches modules, after checking nothing captured their originals."""
    import importlib

    # Looked at before importing any patches module: the ssl twin imports ssl itself.
    ssl_was_imported = "ssl" in sys.modules

    plans = []
    for name in names:
        if name in _installed or not _exists(name):
            continue
        patches = importlib.import_module(f"corun.patches.{name}")
        plans.append(_plan(name, patches))

    from ._late import describe_late_captures

    # The ssl twin rebuilds SSLSocket on the cooperative socket; without it, an
    # ssl imported early keeps the original socket as SSLSocket's base.
    ssl_patched = is_module_patched("ssl") or any(plan.target.__name__ == "ssl" for plan in plans)
    message = describe_late_captures(
        [(plan.target.__name__, attr, original) for plan in plans for attr, original, _ in plan.changes],
        ssl_imported_unpatched=ssl_was_imported and not ssl_patched,
    )
    if message is not None:
        if strict:
            raise LatePatchError(message)
        import warnings

        warnings.warn(message, MonkeyPatchWarning, stacklevel=_caller_stacklevel())

    for plan in plans:
        originals = saved.setdefault(plan.target.__name__, {})
        for attr, original, replacement in plan.changes:
            originals.setdefault(attr, original)
            if replacement is _REMOVED:
                delattr(plan.target, attr)
            else:
                setattr(plan.target, attr, replacement)
        after_patch = getattr(plan.patches, "_after_patch", None)
        if after_patch is not None:
            # Copies of originals that other modules took at import: replaced
            # and recorded like the target's own attributes.
            for module_name, attr, replacement in after_patch(plan.target) or ():
                module = sys.modules[module_name]
                saved.setdefault(module_name, {}).setdefault(attr, getattr(module, attr))
                setattr(module, attr, replacement)
        _installed.append(plan.name)


def _plan(name: str, patches: ModuleType) -> _Plan:
    """Check ``patches`` follows the contract and list the attributes it will replace."""
    import importlib

    target_name = getattr(patches, "__target__", None)
    implements = getattr(patches, "__implements__", None)
    if not isinstance(target_name, str) or not isinstance(implements, (list, tuple)):
        raise AttributeError(f"{patches.__name__} must define __target__ (str) and __implements__ (list)")
    plan = _Plan(name, patches, importlib.import_module(target_name))
    for attr in implements:
        if not hasattr(patches, attr):
            raise AttributeError(
                f"{patches.__name__} lists {attr!r} in __implements__ but does not define it"
            )
        if not hasattr(plan.target, attr):
            # Replace, never add: code testing hasattr(select, "epoll") must
            # keep seeing what this platform offers.
            continue
        replacement = getattr(patches, attr)
        current = getattr(plan.target, attr)
        if current is not replacement and not is_object_patched(target_name, attr):
            plan.changes.append((attr, current, replacement))
    # Variants that cannot be made cooperative are taken away while patched,
    # so libraries that probe for them fall back to one that is.
    for attr in getattr(patches, "__removes__", ()):
        if hasattr(plan.target, attr) and not is_object_patched(target_name, attr):
            plan.changes.append((attr, getattr(plan.target, attr), _REMOVED))
    return plan


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this package."""
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(__name__):
        frame = frame.f_back
        level += 1
    return level
