"""Shared fixtures: a fresh hub per test, and fresh interpreters for patching."""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import corun
from corun.hub import Hub, _peek_hub, get_hub
from corun.testing import PATCH_ALL, kill_group, process_group, run_process

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Start child processes with Ctrl-C and SIGQUIT as a plain program gets them, however started."""
    # A shell without job control starts its background commands with SIGINT
    # and SIGQUIT ignored, and exec keeps them ignored in every child: Python
    # then installs no KeyboardInterrupt handler, and each test that
    # interrupts a child, or checks the dispositions a child ends with,
    # fails.  A handler here is reset to the default in each exec'd child.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """Every test starts with a new hub for the test's thread and leaves none behind.

    A test marked ``corun(...)`` gets the plugin's hub in place of this one
    (on the virtual clock if the marker asks for it, checked for leaks at its end).
    """
    if request.node.get_closest_marker("corun") is not None:
        yield request.getfixturevalue("corun_hub")
        return
    old = _peek_hub()
    if old is not None:
        old.destroy()
    h = get_hub()
    yield h
    h.destroy()
    gc.collect()


@pytest.fixture
def fake_clock(hub: Hub) -> Iterator[list[float]]:
    """The hub's clock as a list whose one number the test moves forward by hand."""
    now = [1000.0]
    hub.clock = lambda: now[0]
    yield now


def now() -> float:
    """The time on the clock of the calling thread's hub (virtual in a test marked for it)."""
    return corun.get_hub().clock()


@pytest.fixture
def alarm_ends_the_process() -> Iterator[None]:
    """pytest-timeout's SIGALRM with its default action, not its Python handler, during the test.

    The hub counts an armed alarm with a Python handler as a wake-up still to
    come (plain Python, too, waits for one), so pytest-timeout's would put off
    the LoopExit a test expects; a test that hangs is still ended by it.
    """
    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


expects_loop_exit = pytest.mark.usefixtures("alarm_ends_the_process")


def recv_all(sock: Any) -> bytes:
    """Everything ``sock`` receives until the peer closes the connection."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def run_python(
    source: str, *args: str, timeout: float = 60, cwd: str | Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter; return the finished process."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    full_env.setdefault("PYTHONFAULTHANDLER", "1")
    if env:
        full_env.update(env)
    command = [sys.executable, "-c", textwrap.dedent(source), *args]
    return run_process(command, timeout=timeout, cwd=cwd, env=full_env)


class PipeLines:
    """Lines a child process writes to a pipe, each read with a deadline.

    Reads the raw fd itself: a ``select`` on a buffered file followed by
    ``readline()`` loses lines, because ``readline`` may pull several lines
    into the file's buffer while the next ``select`` only sees the empty fd.
    """

    def __init__(self, pipe: Any) -> None:
        self._fd = pipe.fileno()
        self._buffer = b""
        self.closed = False

    def readline(self, timeout: float = 10) -> str:
        """The next whole line (without its newline); "" once the writer closed the pipe."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self.closed:
                line, self._buffer = self._buffer, b""
                return line.decode()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no whole line within {timeout} s (have {self._buffer!r})")
            ready, _, _ = select.select([self._fd], [], [], left)
            if ready:
                data = os.read(self._fd, 65536)
                self._buffer += data
                self.closed = not data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def wait_for(self, text: str, timeout: float = 10) -> str:
        """Read lines until one contains ``text``; return it (TimeoutError, EOFError otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if text in line:
                return line
            if self.closed and not self._buffer and not line:
                raise EOFError(f"the pipe closed before a line with {text!r}")

    def take_buffered(self) -> str:
        """What was read from the pipe but not returned as a line yet, now taken out of the buffer.

        ``Popen.communicate()`` reads the fd itself: what is left here goes in front of what it returns.
        """
        data, self._buffer = self._buffer, b""
        return data.decode()


def ticker(period: float) -> str:
    """Source of a task adding one to ``ticks[0]`` every ``period`` s: shows other tasks keep running."""
    return f"""
import corun
ticks = [0]
def _tick():
    while True:
        corun.sleep({period})
        ticks[0] += 1
ticker = corun.spawn(_tick)
"""


def run_json(source: str, *, timeout: float = 30) -> Any:
    """Run ``source`` in a fresh interpreter; return the JSON it printed on its last line."""
    proc = run_python(source, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_patched(source: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter after ``corun.monkey.patch_all()``."""
    return run_python(PATCH_ALL + textwrap.dedent(source), *args, timeout=timeout)


__all__ = [
    "ROOT",
    "PipeLines",
    "corun",
    "expects_loop_exit",
    "kill_group",
    "now",
    "process_group",
    "run_json",
    "run_patched",
    "run_process",
    "run_python",
    "ticker",
]
