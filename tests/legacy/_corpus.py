"""The legacy-program corpus: which programs there are, and how one is run and measured.

Each program in this directory is ordinary stdlib code that never mentions
corun. It runs in a fresh interpreter twice, ``python program.py`` and
``python -m corun program.py``, with the same stdin, environment and working
directory. ``tests/test_legacy.py`` requires the two runs to agree;
``table.py`` prints them side by side for the README.

What a run measures, the same way for both:

- wall time, from the start of the interpreter to its end;
- CPU time (user + system) of the program's process and of the children it
  waited for, from ``os.wait4``;
- OS threads: the most the process had at once, read from
  ``/proc/<pid>/task`` every few milliseconds from outside, so neither run
  carries any measuring code. A thread that lives for less than the sampling
  period can be missed; the programs' threads live for tens of milliseconds
  or more. Threads of child processes are not counted.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# What the programs that read stdin are given: a header, a count and lines of words and numbers.
STDIN_TEXT = "legacy input\n100\n" + "".join(
    f"line {n} carries {n * 3} and {n + 7} in seven words\n" for n in range(100)
)

SAMPLE_PERIOD = 0.005  # seconds between looks at the program's threads


@dataclass(frozen=True)
class Program:
    """One program of the corpus and what its runs are held to."""

    name: str
    # Mostly waits (sleeps, sockets, children): its CPU time must stay well below its wall time.
    waits: bool = False
    stdin: bool = False  # reads STDIN_TEXT from stdin (otherwise stdin is /dev/null)
    status: int = 0  # the exit status it ends with, plainly
    stderr: bool = False  # writes to stderr on purpose (otherwise stderr must stay empty)
    # How it fails under python -m corun today, if it does (the test is a strict xfail).
    known_failure: str | None = None
    timeout: float = 30  # seconds for one run; a program that hangs gets a short one
    # The most OS threads its process may have under corun (None: not checked). Its
    # threads are tasks on the main one; only the hub's thread pool adds OS threads.
    corun_os_threads: int | None = 1
    # Fresh interpreters it starts (multiprocessing's spawn and forkserver children,
    # its resource tracker): under the runner each imports corun and patches first.
    fresh_interpreters: int = 0
    directory: Path = HERE

    @property
    def path(self) -> Path:
        """The program's file."""
        return self.directory / self.name

    @property
    def covers(self) -> str:
        """What the program covers: the first line of its docstring."""
        doc = ast.get_docstring(ast.parse(self.path.read_text())) or ""
        return doc.splitlines()[0] if doc else ""


PROGRAMS: tuple[Program, ...] = (
    Program("alarm_queue_get.py", waits=True),
    Program("asyncio_in_thread.py", waits=True),
    Program("atexit_daemon.py", waits=True),
    Program("bounded_queue_fairness.py"),
    Program("dns_threads.py", corun_os_threads=None),  # getaddrinfo runs in the thread pool
    Program("exit_status.py", status=3, stderr=True),
    Program("executor_no_shutdown.py", waits=True),
    Program("fdopen_pipe_heartbeat.py", waits=True),
    Program("fork_waitpid.py", waits=True),
    Program("http_client_keepalive.py", waits=True),
    Program("http_server_urllib.py", waits=True),
    Program("itimer_heartbeat.py", waits=True),
    Program("itimer_lock_acquire.py", waits=True),
    Program("logging_basicconfig_threads.py", waits=True, stderr=True),
    Program("logging_exception_traceback.py", stderr=True),
    Program("logging_queue_listener.py"),
    Program("many_sleeping_threads.py", waits=True),
    Program("mp_manager.py"),
    Program("mp_forkserver.py", fresh_interpreters=2),  # the forkserver, the resource tracker
    Program("mp_pool_fork.py", waits=True),
    Program("mp_queue_process.py"),
    Program("mp_spawn_pool.py", fresh_interpreters=4),  # two Pool workers, a Process, the resource tracker
    Program("os_pipe_threads.py", timeout=5),
    Program("os_popen_heartbeat.py", waits=True),
    Program("os_system_threads.py", waits=True),
    Program("poll_pipe.py", waits=True),
    Program("priority_queue_jobs.py", waits=True),
    Program("process_pool_executor.py"),
    Program("select_loop.py"),
    Program("selectors_echo.py"),
    Program("sigchld_reaper.py"),
    Program("sigint_shutdown.py", waits=True),
    Program("signal_from_thread.py"),
    Program("signal_event_shutdown.py", waits=True),
    Program("signal_usr1.py", waits=True),
    Program("sigterm_child.py", waits=True),
    Program("sigterm_exit_status.py", waits=True, status=5),
    Program("socket_errors.py"),
    Program("socket_timeout_attr.py"),
    Program("socketserver_threading.py", waits=True),
    Program("sqlite_threads.py"),
    Program("sqlite_wrong_thread.py"),
    Program("stdin_main_loop.py", stdin=True),
    Program("stdin_reader_thread.py", stdin=True, waits=True),
    Program("subprocess_interactive.py"),
    Program("subprocess_pipes.py"),
    Program("subprocess_threads.py", waits=True),
    Program("sync_primitives.py", waits=True),
    Program("thread_local_contextvars.py"),
    Program("thread_per_client_server.py"),
    Program("thread_pool_executor.py", waits=True),
    Program("thread_queue_workers.py", waits=True),
    Program("thread_subclass.py", waits=True),
    Program("timers.py", waits=True),
    Program("udp_server.py", waits=True),
    Program("uncaught_exception.py", status=1, stderr=True),
    Program("xmlrpc_roundtrip.py", waits=True),
)

HOW = ("plain", "corun")

# "About the same time": corun's imports add a little to each run, and to each
# fresh interpreter the run starts (about 0.15 s of CPU each: twice that in wall
# time, and more, while the machine's cores are busy with other work).
SLOWER_FACTOR, SLOWER_MARGIN, MARGIN_PER_INTERPRETER = 1.5, 1.0, 0.4


def time_allowed(program: Program, plain: Run) -> float:
    """The longest a run under corun may take for the same time as ``plain``."""
    return SLOWER_FACTOR * plain.wall + SLOWER_MARGIN + MARGIN_PER_INTERPRETER * program.fresh_interpreters


@dataclass(frozen=True)
class Run:
    """What one run of a program did, and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds
    cpu: float  # seconds of user + system time, the program's and its waited-for children's
    threads: int  # the most OS threads its process had at once
    timed_out: bool


def command(program: Program, how: str) -> list[str]:
    """The command line that runs ``program`` plainly or under ``python -m corun``."""
    if how == "plain":
        return [sys.executable, str(program.path)]
    return [sys.executable, "-m", "corun", str(program.path)]


def environment() -> dict[str, str]:
    """The programs' environment: this checkout importable, faulthandler on, no warning filters."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONFAULTHANDLER"] = "1"  # a run that times out prints its stacks (on SIGABRT)
    env.pop("PYTHONWARNINGS", None)
    return env


def _count_threads(pid: int) -> int:
    """How many OS threads process ``pid`` has now (0 once it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def run(program: Program, how: str) -> Run:
    """Run ``program`` the way ``how`` says ("plain" or "corun") in a fresh interpreter and measure it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        stdin = subprocess.DEVNULL
        if program.stdin:
            stdin = tempfile.TemporaryFile("w+")
            stdin.write(STDIN_TEXT)
            stdin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(
            command(program, how), stdin=stdin, stdout=out, stderr=err, cwd=HERE, env=environment()
        )
        if program.stdin:
            stdin.close()
        peak = 0
        timed_out = False
        # Reaped here rather than by Popen, to get the rusage of the process and its children.
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _count_threads(proc.pid))
            if not timed_out and time.perf_counter() - start > program.timeout:
                timed_out = True
                proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
                start_kill = time.perf_counter()
            elif timed_out and time.perf_counter() - start_kill > 5:
                proc.kill()
            time.sleep(SAMPLE_PERIOD)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            returncode=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            threads=peak,
            timed_out=timed_out,
        )


def verdict(program: Program, plain: Run, corun: Run) -> str:
    """How the run under corun compares with the plain one, in a few words."""
    if corun.timed_out:
        return "hangs"
    if (corun.stdout, corun.stderr, corun.returncode) != (plain.stdout, plain.stderr, plain.returncode):
        if corun.returncode != plain.returncode:
            return f"differs (exit status {corun.returncode})"
        return "differs"
    if corun.wall >= time_allowed(program, plain):
        return "same, but slower"
    return "same"


def program_files() -> list[str]:
    """The programs in this directory: every ``.py`` file but the harness's own."""
    return sorted(
        path.name for path in HERE.glob("*.py") if not path.name.startswith("_") and path.name != "table.py"
    )


__all__ = [
    "HOW",
    "MARGIN_PER_INTERPRETER",
    "PROGRAMS",
    "SLOWER_FACTOR",
    "SLOWER_MARGIN",
    "STDIN_TEXT",
    "Program",
    "Run",
    "command",
    "program_files",
    "run",
    "time_allowed",
    "verdict",
]
