"""Small helpers for tests of code that uses corun: a hand-moved clock, real threads, passes, patched runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from corun import _originals
from corun.hub import Hub, _peek_hub

__all__ = ["PATCH_ALL", "ManualClock", "count_passes", "run_in_thread", "run_patched"]


class ManualClock:
    """A hub clock that moves only when the test moves it (``clock.now += 5`` or ``advance``).

    For tests of ordering and timer logic that step time themselves; a hub on
    it only runs ready callbacks until a test moves it past a deadline (a
    timer not yet due makes the hub really poll until then).  For waits that
    should simply take no time, use ``VirtualClock``.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def run_in_thread(func: Callable[[], Any], timeout: float = 10) -> BaseException | None:
    """Run ``func()`` on a new real OS thread, even when threads are patched; return what it raised.

    The thread's own hub, if ``func`` made one, is destroyed before it ends.

    Raises:
        TimeoutError: the thread was still running after ``timeout`` seconds.
    """
    raised: list[BaseException] = []
    done = _originals.allocate_lock()
    done.acquire()

    def target() -> None:
        try:
            func()
        except BaseException as exc:
            raised.append(exc)
        finally:
            thread_hub = _peek_hub()
            if thread_hub is not None:
                thread_hub.destroy()
            done.release()

    _originals.start_new_thread(target, ())
    if not done.acquire(True, timeout):
        raise TimeoutError(f"{func!r} still ran on its thread after {timeout} s")
    return raised[0] if raised else None


def count_passes(hub: Hub) -> list[int]:
    """Count the passes of ``hub``'s loop from now on, in a one-item list read as ``counter[0]``."""
    counter = [0]
    run_once = hub._run_once

    def counting() -> None:
        counter[0] += 1
        run_once()

    hub._run_once = counting  # type: ignore[method-assign]
    return counter


#: The line a patched program begins with.
PATCH_ALL = "from corun import monkey; monkey.patch_all()\n"


def run_patched(
    source: str,
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` (dedented) in a fresh interpreter after ``patch_all()``; return the finished process.

    The test process itself stays unpatched.  The child runs in a process
    group of its own, killed whole if it outlives ``timeout``, so nothing
    it started is left behind.

    Raises:
        subprocess.TimeoutExpired: still running after ``timeout`` seconds, with what it printed.
    """
    command = [sys.executable, "-c", PATCH_ALL + textwrap.dedent(source), *args]
    full_env = {**os.environ, **(env or {})}
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
