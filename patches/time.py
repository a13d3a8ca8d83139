"""Cooperative twin of ``time``: ``sleep`` suspends the current task, not the thread.

The program's clocks (``monotonic``, ``time``, ``perf_counter`` and their
``_ns`` forms) read the calling thread's hub clock when that is a virtual one
(``corun.testing.VirtualClock``), so that code measuring its own waits sees
the time they took on that clock; on a real clock they are the originals'
readings.  They are installed by ``_after_patch``, with the copies the stdlib
took at import (``threading._time``, ``queue.time``...), and not reported as
captured too early: a captured clock never blocks anything.
"""

from __future__ import annotations

import math
import operator
import sys
import time as _stdtime
from typing import Any

from corun import _originals
from corun.hub import _local as _hub_local
from corun.hub import sleep as _hub_sleep

__all__ = ["monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "sleep", "time", "time_ns"]

__target__ = "time"
__implements__ = ["sleep"]

# time.sleep converts to a signed 64-bit count of nanoseconds.
_MAX_SECONDS = (2**63 - 1) / 1e9


def sleep(seconds: float) -> None:
    """Suspend the current task for ``seconds``, checking the argument as ``time.sleep`` does.

    Raises:
        TypeError: ``seconds`` is neither a float nor an integer.
        ValueError: ``seconds`` is negative or NaN.
        OverflowError: ``seconds`` is too large for the platform's clock.
    """
    if isinstance(seconds, float):
        if math.isnan(seconds):
            raise ValueError("Invalid value NaN (not a number)")
        value: float = seconds
    else:
        # Like the original: integers and objects with __index__, nothing else.
        value = operator.index(seconds)
    if value < 0:
        raise ValueError("sleep length must be non-negative")
    if value > _MAX_SECONDS:
        raise OverflowError("timestamp too large to convert to C _PyTime_t")
    _hub_sleep(value)


_monotonic = _originals.monotonic
_wall_time = _originals.wall_time
_perf_counter = _originals.perf_counter
# The integer forms are read only where the program's clock is the real one.
_monotonic_ns = _stdtime.monotonic_ns
_time_ns = _stdtime.time_ns
_perf_counter_ns = _stdtime.perf_counter_ns


def monotonic() -> float:
    """``time.monotonic()``, on the virtual clock when the calling thread's hub runs on one."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _monotonic() if warp is None else warp()


def time() -> float:
    """``time.time()``, moving with the virtual clock when the calling thread's hub runs on one."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _wall_time() if warp is None else warp.time()


def perf_counter() -> float:
    """``time.perf_counter()``, moving with the virtual clock when the calling thread's hub runs on one."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _perf_counter() if warp is None else warp.perf_counter()


def monotonic_ns() -> int:
    """``time.monotonic_ns()`` on the same clock as ``monotonic``."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _monotonic_ns() if warp is None else int(warp() * 1e9)


def time_ns() -> int:
    """``time.time_ns()`` on the same clock as ``time``."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _time_ns() if warp is None else int(warp.time() * 1e9)


def perf_counter_ns() -> int:
    """``time.perf_counter_ns()`` on the same clock as ``perf_counter``."""
    hub = getattr(_hub_local, "hub", None)
    warp = None if hub is None else hub._warp
    return _perf_counter_ns() if warp is None else int(warp.perf_counter() * 1e9)


# Stdlib modules that copied a clock at import to time their own waits.
_CAPTURES = (
    ("threading", "_time", "monotonic"),
    ("queue", "time", "monotonic"),
    ("subprocess", "_time", "monotonic"),
    ("socketserver", "time", "monotonic"),
)
_CLOCKS = ("monotonic", "time", "perf_counter", "monotonic_ns", "time_ns", "perf_counter_ns")


def _after_patch(target: Any) -> list[tuple[str, str, Any]]:
    """The program's clocks, and the copies of them the stdlib took at import."""
    this = sys.modules[__name__]
    changes = [("time", name, getattr(this, name)) for name in _CLOCKS]
    for module_name, attr, clock in _CAPTURES:
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, attr, None) is getattr(target, clock):
            changes.append((module_name, attr, getattr(this, clock)))
    return changes
