"""Cooperative twin of ``_multiprocessing``: process-shared locks and semaphores that park only their task.

Facts this module relies on:

- multiprocessing's ``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore``,
  ``Condition``, ``Event`` and ``Barrier`` are built on
  ``_multiprocessing.SemLock`` (a POSIX semaphore), which
  ``multiprocessing.synchronize`` looks up on the module each time it makes
  one, and unpickles through the classmethod ``SemLock._rebuild``.  So
  replacing the attribute reaches every lock made or received afterwards,
  even when multiprocessing was imported before patching.
- A POSIX semaphore has no fd to wait on.  A task that cannot take it at
  once takes a short cooperative sleep and tries again, backing off from
  1 ms to 20 ms, so other tasks run meanwhile and a wait sleeps rather than
  spins.  When nothing else in the thread could ever run (no ready
  callbacks, timers, fd waits or work in other threads), blocking in the C
  call is what the stdlib does, and it wakes without delay.
- The C lock records its owner as the calling OS thread (an ``RLock``'s
  recursion, a ``Condition``'s "must acquire first" check), so every try
  runs on the calling thread, never in a helper thread.
"""

from __future__ import annotations

import _multiprocessing  # type: ignore[import-not-found]
from typing import Any

from corun.hub import get_hub
from corun.hub import sleep as _hub_sleep

__all__ = ["SemLock"]

__target__ = "_multiprocessing"
__implements__ = ["SemLock"]

_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.02

_CSemLock: Any = _multiprocessing.SemLock


class SemLock(_CSemLock):
    """``_multiprocessing.SemLock`` whose blocking ``acquire`` lets the other tasks run."""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        """Take the semaphore; wait cooperatively up to ``timeout`` s (None: as long as it takes)."""
        take = super().acquire
        if take(False):
            return True
        if not block:
            return False
        hub = get_hub()
        deadline = None
        if timeout is not None:
            deadline = hub.clock() + max(0.0, float(timeout))
        pause = _FIRST_PAUSE
        while True:
            left = None if deadline is None else deadline - hub.clock()
            if left is not None and left <= 0:
                return False
            if hub.nothing_else_can_run():
                return bool(take(True, left))
            _hub_sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE)
            if take(False):
                return True

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
