"""Installs ``corun.patches`` into the running interpreter and remembers the originals.

Each ``corun.patches.<name>`` module is a cooperative twin of one stdlib
module: it names that module in ``__target__`` and the attributes it replaces
in ``__implements__``.  Patching sets those attributes on the module object
that is already imported (so ``import socket`` done earlier sees the new
ones), records every original in ``saved``, then calls the twin's optional
``_after_patch(target)``.  That returns every other change patching needs,
for this module to make and record in ``saved`` with its original, so that
``get_original`` and ``is_object_patched`` know of each one:

- ``(module name, attribute, replacement)``: a copy of an original that
  another module took at import (``socketserver._ServerSelector``).  The
  attribute may be a dotted path through an original object
  (``("ssl", "SSLContext.sslsocket_class", ...)`` is the attribute of the
  original ``ssl.SSLContext``, which contexts made before patching still use).
- ``(module name, key, original, apply)``: state that is no attribute (the
  handler of a signal): ``apply()`` makes the change, and ``original`` is
  recorded under ``key``, a name saying what it is (``"handler(SIGINT)"``).

A twin of a third-party package names it in ``__installed_on_import__``: it
is installed at once if the package is imported already, and otherwise when
the program imports it (``_deferred``), never importing it sooner.  So are
the stdlib twins of modules a program may never use (``_deferred.STDLIB``:
socket, ssl, sqlite3, subprocess), which start-up would otherwise wait for; asking
``get_original``, ``is_module_patched`` or ``is_object_patched`` about such
a module imports it, and so installs its twin, so that the answer is the
same as when patching imported it.

Which twins each ``patch_all`` keyword installs is declared once, in ``_areas``.

Imports here stay inside the functions: a module-level ``import socket``
would run before patching and could capture a name that is about to change.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

from . import _areas, _deferred

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
    "patch_module",
    "saved",
    # and patch_<area> for each declared area, added below
]

#: Every change made so far: ``saved[module_name][attribute] = original``, the
#: attribute possibly a dotted path or a key naming other state (see above).
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
        name: one attribute name (or dotted path, or key of other state
            recorded in ``saved``), or a list of them for a list of objects.

    Raises:
        AttributeError: the module has no such attribute and never had.
    """
    if isinstance(name, str):
        return _original(module_name, name)
    return [_original(module_name, n) for n in name]


def _original(module_name: str, name: str) -> Any:
    _settle(module_name)
    recorded = saved.get(module_name, {})
    if name in recorded:
        return recorded[name]
    owner_path, _, attr = name.rpartition(".")
    if owner_path:
        # An attribute of an object as it was before patching.
        return getattr(_original(module_name, owner_path), attr)
    import importlib

    return getattr(importlib.import_module(module_name), name)


def is_module_patched(name: str) -> bool:
    """Whether any attribute of the module ``name`` has been replaced."""
    _settle(name)
    return bool(saved.get(name))


def is_object_patched(module_name: str, name: str) -> bool:
    """Whether ``module_name.name`` has been replaced."""
    _settle(module_name)
    return name in saved.get(module_name, {})


def _settle(module_name: str) -> None:
    """Import ``module_name`` if a stdlib twin waits for it, which installs the twin."""
    if module_name in _deferred.STDLIB.values() and module_name in _deferred.waiting():
        import importlib

        importlib.import_module(module_name)


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
    psycopg: bool = True,
    grpc: bool = True,
    strict: bool = False,
    **more: Any,
) -> None:
    """Make the blocking parts of the stdlib cooperative; call it before any other import.

    Each flag turns one area on or off (``python -m corun --help`` says what
    each covers).  An area corun has no cooperative version of yet is
    accepted and left alone.

    Args:
        strict: raise ``LatePatchError`` (patching nothing) instead of warning
            when modules imported earlier hold originals that patching replaces.

    Raises:
        TypeError: an unknown keyword; the message lists the valid ones.
        LatePatchError: with ``strict=True``, when patching comes too late.
    """
    # The keywords above are the declared areas, spelled out for readers and
    # IDEs (a test holds them equal to the declaration); they are read back
    # by name here, and an area declared but not spelled out comes in ``more``.
    given = {name: value for name, value in locals().items() if name not in ("strict", "more")}
    area_names = _areas.names()
    unknown = [name for name in more if name not in area_names]
    if unknown:
        valid = ", ".join([*area_names, "strict"])
        bad = ", ".join(repr(name) for name in unknown)
        raise TypeError(f"patch_all() got unexpected keyword argument(s) {bad}; valid keywords are: {valid}")
    flags = {**given, **more}
    _install(_areas.install_order(name for name in area_names if flags.get(name, True)), strict)


class _AreaPatcher(Protocol):
    """A ``patch_<area>`` function: installs one area's ``corun.patches`` modules."""

    def __call__(self, *, strict: bool = False) -> None: ...


def _area_patcher(area: _areas.Area) -> _AreaPatcher:
    """The ``patch_<area>`` function of ``area``."""
    name = area.name

    def patch(*, strict: bool = False) -> None:
        _install(_areas.install_order([name]), strict)

    patch.__name__ = patch.__qualname__ = f"patch_{name}"
    patch.__doc__ = f"Make the {name} area cooperative: {area.description}."
    return patch


# One function per declared area, made here from the declaration.  The
# annotations tell type checkers and IDEs, which cannot see them being made,
# that they exist; a test holds them equal to the declaration.
patch_socket: _AreaPatcher
patch_dns: _AreaPatcher
patch_time: _AreaPatcher
patch_select: _AreaPatcher
patch_thread: _AreaPatcher
patch_os: _AreaPatcher
patch_ssl: _AreaPatcher
patch_subprocess: _AreaPatcher
patch_signal: _AreaPatcher
patch_queue: _AreaPatcher
patch_psycopg: _AreaPatcher
patch_grpc: _AreaPatcher
for _area in _areas.AREAS:
    globals()[f"patch_{_area.name}"] = _area_patcher(_area)
    __all__.append(f"patch_{_area.name}")
del _area


def patch_module(name: str, *, strict: bool = False) -> bool:
    """Install ``corun.patches.<name>``; return False if there is no such module.

    Returns:
        True once the module is installed, by this call or an earlier one,
        or waits to be installed on its module's import.
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


def _install(names: Iterable[str], strict: bool, *, check_captures: bool = True) -> None:
    """Install the named patches modules, after checking nothing captured their originals.

    Args:
        check_captures: look for modules holding the originals first (not
            when a twin's module has only now been imported: none can).
    """
    import importlib

    # Looked at before importing any patches module: the ssl twin imports ssl itself.
    ssl_was_imported = "ssl" in sys.modules

    plans = []
    # Twins of packages not imported yet: installed when the program imports them.
    deferred: list[tuple[str, str]] = []
    for name in names:
        if name in _installed or not _exists(name):
            continue
        module_name = _deferred.STDLIB.get(name)
        if module_name is not None and module_name not in sys.modules:
            deferred.append((module_name, name))
            continue
        patches = importlib.import_module(f"corun.patches.{name}")
        package = getattr(patches, "__installed_on_import__", None)
        if package is not None and package not in sys.modules:
            deferred.append((package, name))
            continue
        plans.append(_plan(name, patches))

    repaired = _repaired(plans)
    if check_captures:
        _check_captures(plans, ssl_was_imported, repaired, strict)

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
            for change in after_patch(plan.target) or ():
                _make_change(change)
        _installed.append(plan.name)
    if repaired:
        _repair_captures(repaired)
    if deferred:
        _install_on_import(deferred)


def _repaired(plans: list[_Plan]) -> frozenset[str]:
    """The packages whose captures patching rebinds, as the twins installed and to install say."""
    return frozenset(
        package
        for patches in [*(plan.patches for plan in plans), *_installed_patches()]
        for package in getattr(patches, "__repairs_captures_in__", ())
    )


def _check_captures(
    plans: list[_Plan], ssl_was_imported: bool, repaired: frozenset[str], strict: bool
) -> None:
    """Warn, or with ``strict`` raise, if modules imported earlier hold originals ``plans`` replace."""
    from ._late import describe_late_captures

    # The ssl twin rebuilds SSLSocket on the cooperative socket; without it, an
    # ssl imported early keeps the original socket as SSLSocket's base.
    ssl_patched = bool(saved.get("ssl")) or any(plan.target.__name__ == "ssl" for plan in plans)
    message = describe_late_captures(
        [(plan.target.__name__, attr, original) for plan in plans for attr, original, _ in plan.changes],
        ssl_imported_unpatched=ssl_was_imported and not ssl_patched,
        repaired=repaired,
    )
    if message is not None:
        if strict:
            raise LatePatchError(message)
        import warnings

        warnings.warn(message, MonkeyPatchWarning, stacklevel=_caller_stacklevel())


def _install_on_import(deferred: list[tuple[str, str]]) -> None:
    """Have each ``(package, twin)`` installed the moment the program imports the package."""
    for package, name in deferred:
        _deferred.register(package, name, _install_imported)
    if _deferred.ImportHook not in sys.meta_path:
        # A new list rather than an insert, so that the original stays as it was.
        _make_change(("sys", "meta_path", [_deferred.ImportHook, *sys.meta_path]))
    # A twin installed after the deferral was decided may have imported one
    # (the hook was not in place yet to see it).
    for package, _name in deferred:
        if package in sys.modules:
            _deferred.imported(sys.modules[package])


def _install_imported(name: str) -> None:
    """Install the twin ``name`` of a package the program has just imported."""
    # Nothing can have taken an original from a module not imported until now;
    # and the check, run in the middle of the program's imports, could set off
    # a lazy import of the program's (a proxy's ``__class__``).
    _install([name], strict=False, check_captures=False)


def _installed_patches() -> list[ModuleType]:
    """The patches modules installed by earlier calls."""
    return [
        sys.modules[f"corun.patches.{name}"] for name in _installed if f"corun.patches.{name}" in sys.modules
    ]


def _repair_captures(packages: frozenset[str]) -> None:
    """Rebind, in the loaded modules of ``packages``, every name that holds a replaced original.

    A twin names in ``__repairs_captures_in__`` the packages it knows it is
    safe to do this for (psycopg's ``from threading import Lock``, done
    before patching): the name then holds the cooperative object instead.
    """
    current: dict[int, tuple[str, str]] = {}
    for module_name, originals in saved.items():
        if module_name.partition(".")[0] not in sys.stdlib_module_names:
            # A driver's own attributes its twin replaced (psycopg's wait_c,
            # also bound as its wait): not captures of the stdlib.
            continue
        for key, original in originals.items():
            # Plain attributes with a callable original: functions and classes.
            if "." in key or "(" in key or not callable(original):
                continue
            current[id(original)] = (module_name, key)
    for module_name, module in list(sys.modules.items()):
        if module_name.partition(".")[0] not in packages or module is None:
            continue
        for attr, value in list(vars(module).items()):
            where = current.get(id(value))
            if where is None:
                continue
            owner = sys.modules.get(where[0])
            replacement = getattr(owner, where[1], None)
            if replacement is not None and replacement is not value:
                _make_change((module_name, attr, replacement))


def _make_change(change: tuple[Any, ...]) -> None:
    """Make one change an ``_after_patch`` asked for, and record its original in ``saved``."""
    if len(change) == 4:
        module_name, key, original, apply = change
        apply()
        saved.setdefault(module_name, {}).setdefault(key, original)
        return
    module_name, path, replacement = change
    owner_path, _, attr = path.rpartition(".")
    # An attribute of the module, or of an original object reached from it.
    owner = _original(module_name, owner_path) if owner_path else sys.modules[module_name]
    saved.setdefault(module_name, {}).setdefault(path, getattr(owner, attr))
    setattr(owner, attr, replacement)


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
        if current is not replacement and attr not in saved.get(target_name, {}):
            plan.changes.append((attr, current, replacement))
    # Variants that cannot be made cooperative are taken away while patched,
    # so libraries that probe for them fall back to one that is.
    for attr in getattr(patches, "__removes__", ()):
        if hasattr(plan.target, attr) and attr not in saved.get(target_name, {}):
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
