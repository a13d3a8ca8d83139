"""Cooperative twin of :mod:`selectors`: selectors whose ``select`` blocks only its task.

The stdlib selector classes bind their poller when the class is created
(``SelectSelector._select = select.select``, ``PollSelector._selector_cls =
select.poll``, ``EpollSelector._selector_cls = select.epoll``), so patching
``select`` alone leaves them blocking.  The classes here are the stdlib's with
the cooperative pollers of ``corun.patches.select`` bound instead; all the
bookkeeping (keys, masks, timeouts) stays the stdlib's own.

Other stdlib modules copy a selector class when they are imported
(``socketserver._ServerSelector``, ``subprocess._PopenSelector``...);
``_after_patch`` points those copies at the classes here.
"""

from __future__ import annotations

import selectors as _selectors
import sys
from typing import Any

from . import select as _coselect

__target__ = "selectors"


class SelectSelector(_selectors.SelectSelector):
    """``selectors.SelectSelector`` on the cooperative ``select.select``."""

    if sys.platform == "win32":

        def _select(self, r: Any, w: Any, _: Any, timeout: float | None = None) -> Any:
            # Windows reports a failed connect in the exceptional set only.
            r, w, x = _coselect.select(r, w, w, timeout)
            return r, w + x, []

    else:
        _select = staticmethod(_coselect.select)


__implements__ = ["DefaultSelector", "SelectSelector"]

# The stdlib class each cooperative class stands for.
_COOPERATIVE: dict[type, type] = {_selectors.SelectSelector: SelectSelector}

if hasattr(_selectors, "PollSelector"):

    class PollSelector(_selectors.PollSelector):
        """``selectors.PollSelector`` on the cooperative ``select.poll``."""

        _selector_cls = _coselect.poll

    __implements__.append("PollSelector")
    _COOPERATIVE[_selectors.PollSelector] = PollSelector

if hasattr(_selectors, "EpollSelector"):

    class EpollSelector(_selectors.EpollSelector):
        """``selectors.EpollSelector`` on the cooperative ``select.epoll``."""

        _selector_cls = _coselect.epoll

    __implements__.append("EpollSelector")
    _COOPERATIVE[_selectors.EpollSelector] = EpollSelector


def _best_fallback() -> type:
    """The cooperative class for a platform whose default poller has none (kqueue, devpoll)."""
    return _COOPERATIVE.get(getattr(_selectors, "PollSelector", None), SelectSelector)  # type: ignore[arg-type]


#: The most efficient cooperative selector on this platform, chosen as the
#: stdlib chooses its own (it has already checked the poller works here).
DefaultSelector: Any = _COOPERATIVE.get(_selectors.DefaultSelector) or _best_fallback()

__all__ = list(__implements__)

# Selectors on pollers with no cooperative version here: removed while patched,
# so nothing picks them by name.
__removes__ = [name for name in ("KqueueSelector", "DevpollSelector") if hasattr(_selectors, name)]

# Module attributes other stdlib modules set, at import, to a selector class.
_CAPTURES = (
    ("socketserver", "_ServerSelector"),
    ("subprocess", "_PopenSelector"),
    ("telnetlib", "_TelnetSelector"),
    ("multiprocessing.connection", "_WaitSelector"),
)


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The selector classes other stdlib modules copied at import, with their cooperative ones."""
    changes = []
    for module_name, attr in _CAPTURES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        replacement = _COOPERATIVE.get(getattr(module, attr, None))  # type: ignore[arg-type]
        if replacement is not None:
            changes.append((module_name, attr, replacement))
    return changes
