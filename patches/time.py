"""Cooperative twin of ``time``: ``sleep`` suspends the current task, not the thread."""

from __future__ import annotations

import math
import operator

from corun.hub import sleep as _hub_sleep

__all__ = ["sleep"]

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
