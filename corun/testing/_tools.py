"""Small helpers for tests of code that uses corun: a hand-moved clock, real threads, passes, patched runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from corun import _originals
from corun.hub import Hub, _peek_hub

__all__ = [
    "PATCH_ALL",
    "ManualClock",
    "count_passes",
    "kill_group",
    "process_group",
    "run_in_thread",
    "run_patched",
    "run_process",
]


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

    The thread's own hub, if ``func`` made one, is destroyed before it ends,
    and this returns only once the thread has ended, so that the clean-up of
    its greenlets does not spill into whatever the caller does next.

    Raises:
        TimeoutError: the thread was still running after ``timeout`` seconds.
    """
    raised: list[BaseException] = []
    started = _originals.allocate_lock()
    started.acquire()
    ended: list[Any] = []

    def target() -> None:
        if _originals.set_sentinel is not None:
            # Held by this thread; the interpreter releases it once the thread's state is gone.
            sentinel = _originals.set_sentinel()
            sentinel.acquire()
            ended.append(sentinel)
        started.release()
        try:
            func()
        except BaseException as exc:
            raised.append(exc)
        finally:
            thread_hub = _peek_hub()
            if thread_hub is not None:
                thread_hub.destroy()

    if _originals.start_joinable_thread is not None:
        handle = _originals.start_joinable_thread(target)
        handle.join(timeout)
        finished = handle.is_done()
    else:
        deadline = _originals.monotonic() + timeout
        _originals.start_new_thread(target, ())
        started.acquire()
        finished = ended[0].acquire(True, max(0.0, deadline - _originals.monotonic()))
    if not finished:
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


@contextlib.contextmanager
def process_group(command: list[str], **options: Any) -> Iterator[subprocess.Popen[Any]]:
    """Start ``command`` as the leader of a process group of its own; kill and reap the group after.

    Whatever the process started and left behind (a server, a worker, a
    shell still sleeping) is in that group and is killed with it, whether the
    test passed, failed or timed out: one failure cannot leave processes that
    disturb the next test.  ``options`` are ``subprocess.Popen``'s.
    """
    proc = subprocess.Popen(command, start_new_session=True, **options)
    try:
        yield proc
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL what is left of ``proc``'s process group, reap ``proc`` and close its pipes."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def run_process(
    command: list[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end in a process group of its own; return the finished process.

    Like ``subprocess.run(..., capture_output=True, text=True)``, except that
    the processes it leaves behind are killed too, and that a timeout cannot
    hang on a pipe such a process still holds open.

    Raises:
        subprocess.TimeoutExpired: still running after ``timeout`` s; killed, with what it printed.
    """
    stdin = subprocess.PIPE if input is not None else None
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with process_group(command, stdin=stdin, cwd=cwd, env=env, **options) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def run_patched(
    source: str,
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` (dedented) in a fresh interpreter after ``patch_all()``; return the finished process.

    The test process itself stays unpatched.  The child runs in a process
    group of its own (``run_process``), so nothing it started is left behind.

    Raises:
        subprocess.TimeoutExpired: still running after ``timeout`` seconds, with what it printed.
    """
    command = [sys.executable, "-c", PATCH_ALL + textwrap.dedent(source), *args]
    return run_process(command, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
