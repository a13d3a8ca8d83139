"""Cooperative twin of ``threading``: its captured ``_thread`` names point at the task versions.

``threading`` copies ``_thread``'s functions into its own namespace at import
(``_start_new_thread``, ``_allocate_lock``, ``_CRLock``, ``get_ident``...),
and it is always imported before patching, so replacing ``_thread``'s
attributes alone would change nothing.  Everything else in ``threading``
(``Thread``, ``Event``, ``Condition``, ``Semaphore``, ``Barrier``,
``Timer``, ``_shutdown``) is Python built on those names and becomes
cooperative with them.
"""

from __future__ import annotations

import threading as _threading
import weakref
from typing import Any

from greenlet import getcurrent

from corun.greenlet import Greenlet

from . import thread as _thread_twin

__all__ = ["Lock", "RLock", "get_ident", "local"]

__target__ = "threading"
__implements__ = [
    "Lock",
    "_CRLock",
    "_DummyThread",
    "_LockType",
    "_ThreadHandle",
    "_allocate_lock",
    "_make_thread_handle",
    "_set_sentinel",
    "_start_joinable_thread",
    "_start_new_thread",
    "_thread_shutdown",
    "get_ident",
    "local",
]

Lock = _LockType = _allocate_lock = _thread_twin.LockType
_CRLock = RLock = _thread_twin.RLock
get_ident = _thread_twin.get_ident
local = _thread_twin._local
_set_sentinel = _thread_twin._set_sentinel
_start_new_thread = _thread_twin.start_new_thread
_start_joinable_thread = _thread_twin.start_joinable_thread
_ThreadHandle = _thread_twin._ThreadHandle
_make_thread_handle = _thread_twin._make_thread_handle
_thread_shutdown = _thread_twin._shutdown


class _DummyThread(_threading._DummyThread):
    """What ``current_thread()`` returns in a task not started as a thread; it leaves with the task."""

    def __init__(self) -> None:
        super().__init__()
        ident = self._ident  # type: ignore[attr-defined]
        me = weakref.ref(self)

        def forget(_gone: Any) -> None:
            dummy = me()
            if dummy is None:
                return
            with _threading._active_limbo_lock:  # type: ignore[attr-defined]
                if _threading._active.get(ident) is dummy:  # type: ignore[attr-defined]
                    del _threading._active[ident]  # type: ignore[attr-defined]
            handle = getattr(dummy, "_handle", None)
            if isinstance(handle, _thread_twin._ThreadHandle):
                handle._set_done()

        current = getcurrent()
        if isinstance(current, Greenlet):
            current.rawlink(forget)
        elif current.parent is not None:
            # A bare greenlet: forget it when it is collected.
            self._corun_watch = weakref.ref(current, forget)


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The stdlib's remaining thread-local captures, pointed at task-local ones (for ``monkey`` to set)."""
    import _threading_local  # noqa: F401 - imported so that its attribute can be replaced

    changes: list[tuple[str, str, Any]] = [("_threading_local", "local", _thread_twin._local)]
    # 3.13 tracks dummy threads through a thread-local made at import; a
    # task-local one lets each task's tracker go when that task ends.
    if hasattr(target, "_thread_local_info"):
        changes.append((target.__name__, "_thread_local_info", _thread_twin._local()))
    return changes
