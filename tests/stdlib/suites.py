"""Run CPython's own test modules under corun's ``patch_all()`` and compare them with the known failures.

Each module runs in a fresh interpreter (``python -m corun run_one.py
MODULE``), in its own scratch directory.  A test that hangs is ended by the
child's watchdog and recorded as ``timeout``; the child is then started again
for the tests not yet run, so one hang costs one test, not the module.

Command line (exit status 1 if anything unexpected happened)::

    python tests/stdlib/suites.py [--unpatched | --gevent] [--group NAME] [--python PY] [--jobs N]
                                  [--test-timeout S] [--json OUT] [MODULE ...]

``--gevent`` runs the modules under gevent's own ``patch_all()`` instead
(``python -m gevent.monkey``, with gevent installed in that interpreter): how
the reference outcomes that corun is compared with were made.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FAILING",
    "GROUPS",
    "HANG_TAG",
    "JOBS",
    "KNOWN_FAILURES",
    "LONG_TESTS",
    "MACHINE_TAG",
    "MODULES",
    "PARTS",
    "RUNTIMES",
    "KnownFailure",
    "ModuleGroup",
    "ModuleRun",
    "Outcome",
    "Verdict",
    "check",
    "format_verdict",
    "group_of",
    "in_part",
    "load_known_failures",
    "main",
    "modules_for",
    "run_module",
    "running",
]

HERE = Path(__file__).resolve().parent
RUN_ONE = HERE / "run_one.py"
KNOWN_FAILURES = HERE / "known_failures.txt"


@dataclass(frozen=True)
class ModuleGroup:
    """Modules that the test suite runs together, and the Pythons it runs them on."""

    name: str
    modules: tuple[str, ...]
    pythons: str  # as in known_failures.txt: "all", "3.11", "3.12+", "3.10-3.11", or a comma list
    why: str = ""  # why not on every Python, when not


GROUPS = (
    # The modules of the socket, select and ssl areas, and the protocols on top of them.
    ModuleGroup(
        "network",
        (
            "test_socket",
            "test_selectors",
            "test_select",
            "test_poll",
            "test_ssl",
            "test_timeout",
            "test_httplib",
            "test_httpservers",
            "test_urllib2_localnet",
            "test_socketserver",
            "test_ftplib",
            "test_xmlrpc",
        ),
        pythons="all",
    ),
    # The thread, queue, os, subprocess and signal areas.  They run on every
    # Python: on two cores they add about 40 s per Python to the test run
    # (the whole stdlib file: about 105 s against 65 s), because the tests
    # that hang under corun are not run (known_failures.txt, "[hang]").
    ModuleGroup(
        "threads",
        (
            "test_threading",
            "test_thread",
            "test_threading_local",
            "test_queue",
            "test_subprocess",
            "test_signal",
            "test_os",
            "test_concurrent_futures",
        ),
        pythons="all",
    ),
    # multiprocessing under the thread, os and socket areas: processes
    # forked from a patched parent, process-shared locks, pipes and sockets
    # handed to multiprocessing's connections, managers and pools.
    ModuleGroup("multiprocessing", ("test_multiprocessing_fork",), pythons="all"),
)

MODULES = tuple(module for group in GROUPS for module in group.modules)

# Modules run only in part: the test classes that run (fnmatch patterns on
# the class's name).  test_os: the process parts (fork, waitpid and exit
# statuses, kill, spawn*, exec*); its posix_spawn tests live in test_posix.
# test_concurrent_futures: the thread-pool executor's classes and the
# executor-free Future tests, not the process pools.
# test_multiprocessing_fork: the classes run with processes and with a
# manager (processes, queues, pools, connections, listeners, the locks and
# shared objects, every manager type) and the tests of connection.wait, the
# simple queue, the manager's types, pool initializers and timeouts; not
# the same classes run with threads (multiprocessing.dummy: the threads
# group's business), nor the tests of other start methods, whose spawned
# children would import the test module by its name, which run_one.py
# builds in memory (ASSEMBLED) rather than finds as a file.
PARTS = {
    "test_os": ("ExecTests", "ForkTests", "PidTests", "SpawnTests", "Win32KillTests"),
    "test_concurrent_futures": ("ThreadPool*", "FutureTests"),
    "test_multiprocessing_fork": (
        "WithProcesses*",
        "WithManager*",
        "TestWait",
        "TestSimpleQueue",
        "TestSyncManagerTypes",
        "TestPoolNotLeakOnFailure",
        "TestInitializers",
        "TestTimeouts",
        "TestIgnoreEINTR",
    ),
}


def group_of(module: str) -> ModuleGroup:
    """The group ``module`` belongs to."""
    for group in GROUPS:
        if module in group.modules:
            return group
    raise KeyError(module)


def modules_for(python: str) -> list[str]:
    """The modules the test suite runs on Python ``python`` ("3.11")."""
    return [
        module
        for group in GROUPS
        if any(_version_matches(part, python) for part in group.pythons.split(","))
        for module in group.modules
    ]


def in_part(module: str, test_id: str) -> bool:
    """Whether ``test_id`` is in the part of ``module`` that runs (every test, for a module run whole)."""
    patterns = PARTS.get(module)
    if patterns is None:
        return True
    class_name = test_id.split(".")[-2] if test_id.count(".") >= 2 else ""
    return any(fnmatch.fnmatchcase(class_name, pattern) for pattern in patterns)


# The slowest modules, slowest first: they start first when several run at once.
_SLOWEST_FIRST = (
    "test_multiprocessing_fork",
    "test_signal",
    "test_socket",
    "test_subprocess",
    "test_ssl",
    "test_concurrent_futures",
    "test_threading",
    "test_xmlrpc",
    "test_selectors",
    "test_ftplib",
    "test_queue",
    "test_poll",
)

# How many modules run at once by default.  They spend most of their time
# waiting on sockets and timers (a tenth of a core each), and CPython's own
# test runner runs them side by side too.
JOBS = 3

# test_socketserver skips itself without the network resource; it only
# talks to localhost.  Every other module runs with the network off.
NETWORK_MODULES = frozenset({"test_socketserver"})

# Outcomes that count as a failure of the test.  ``timeout``: the test hung
# and the watchdog ended it; ``crash``: the interpreter died during the test;
# ``notrun``: collected but never run (its process ended early).
FAILING = frozenset({"fail", "error", "xpass", "timeout", "crash", "notrun"})

# What a module can run under: corun's runner, gevent's (for the reference), or nothing.
RUNTIMES = ("corun", "gevent")

# Seconds one test may take before it counts as hung; and the whole module.
TEST_TIMEOUT = 30.0
WALL_LIMIT = 900.0

# Tests that take about TEST_TIMEOUT by design, unpatched too, and the
# seconds they get instead.  test_siginterrupt_off (3.10-3.12) waits for
# test.support's SHORT_TIMEOUT, 30 s, for a child it knows will not answer.
LONG_TESTS = {"test.test_signal.SiginterruptTest.test_siginterrupt_off": 60.0}

# The child's exit status when its watchdog ended a hung test
# (run_one.Watchdog.EXIT_STATUS); faulthandler, the watchdog's backstop,
# prints "Timeout (h:mm:ss)!" and exits with 1.
HUNG_STATUS = 124

# How much of the child's output is kept to explain a hang or crash.
LOG_TAIL = 8000


@dataclass
class Outcome:
    """What happened to one test: ``outcome`` is one of pass, skip, xfail, or a FAILING one."""

    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class ModuleRun:
    """Everything one module's run produced."""

    module: str
    python: str  # "3.11"
    patched: bool
    runtime: str = "corun"  # what patched it, when patched: one of RUNTIMES
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    unavailable: str | None = None  # why the module could not run at all
    elapsed: float = 0.0
    restarts: int = 0

    def count(self, outcome: str) -> int:
        """How many tests ended with ``outcome``."""
        return sum(1 for o in self.outcomes.values() if o.outcome == outcome)


# -- running ---------------------------------------------------------------


def _command(
    run: ModuleRun, python: str, results: Path, skip: Path | None, hangs: Path | None, test_timeout: float
) -> list[str]:
    if not run.patched:
        command = [python]
    elif run.runtime == "gevent":
        command = [python, "-m", "gevent.monkey"]
    else:
        command = [python, "-m", "corun"]
    command += [str(RUN_ONE), run.module, "--results", str(results), "--test-timeout", str(test_timeout)]
    if skip is not None:
        command += ["--skip", str(skip)]
    if hangs is not None:
        command += ["--hangs", str(hangs)]
    if run.module in NETWORK_MODULES:
        command.append("--network")
    for pattern in PARTS.get(run.module, ()):
        command += ["--only", pattern]
    for test_id, seconds in LONG_TESTS.items():
        if test_id.startswith(_module_id(run.module) + ".") and seconds > test_timeout:
            command += ["--long", f"{test_id}={seconds:g}"]
    return command


def _read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                break  # a line cut short by the process ending
    return records


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - LOG_TAIL))
        return f.read().decode("utf-8", "replace")


def run_module(
    module: str,
    *,
    python: str = sys.executable,
    patched: bool = True,
    runtime: str = "corun",
    test_timeout: float = TEST_TIMEOUT,
    wall_limit: float = WALL_LIMIT,
    pythonpath: str | None = None,
) -> ModuleRun:
    """Run one test module in fresh interpreters until every test has an outcome.

    Args:
        module: a name from ``MODULES`` (``test.`` prefix allowed), or the
            dotted name of any unittest module importable by the child.
        python: the interpreter to run it with (corun must be importable there).
        patched: run under ``python -m corun`` (else plain python: the baseline).
        runtime: what patches, when ``patched``: "corun", or "gevent" (its
            ``python -m gevent.monkey``) to make the reference.
        test_timeout: seconds one test may take before it counts as hung.
        wall_limit: seconds for the whole module; tests left then are ``notrun``.
        pythonpath: put in front of the child's module search path.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    run = ModuleRun(module=module.removeprefix("test."), python="", patched=patched, runtime=runtime)
    runner = _ModuleRunner(run, python, test_timeout, pythonpath)
    start = time.monotonic()
    try:
        while runner.run_child(timeout=wall_limit - (time.monotonic() - start)):
            runner.run.restarts += 1
    finally:
        runner.run.elapsed = time.monotonic() - start
        shutil.rmtree(runner.scratch, ignore_errors=True)
    return runner.finish()


class _ModuleRunner:
    """The state of one module's run across the interpreters it takes."""

    def __init__(self, run: ModuleRun, python: str, test_timeout: float, pythonpath: str | None) -> None:
        module = run.module
        self.run = run
        # Known failures that hang, not run at all under corun: each would only cost test_timeout.
        self.hangs: list[KnownFailure] = []
        if run.patched and run.runtime == "corun" and module in MODULES:
            version = _python_version(python)
            self.hangs = [
                entry
                for entry in load_known_failures()
                if entry.hangs and entry.module == module and entry.applies_to(version)
            ]
        self.python = python
        self.test_timeout = test_timeout
        self.scratch = Path(tempfile.mkdtemp(prefix=f"corun-{module}-"))
        self.results = self.scratch / "results.jsonl"
        self.skip_file = self.scratch / "skip.txt"
        self.log = self.scratch / "output.log"
        self.workdir = self.scratch / "cwd"
        self.workdir.mkdir()
        self.env = dict(os.environ)
        self.env.pop("PYTHONWARNINGS", None)
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, self.env.get("PYTHONPATH")]))
        self.collected: list[str] = []
        self.fixtures: dict[str, str] = {}  # class and module fixtures' outcomes
        self.records_read = 0

    def run_child(self, timeout: float) -> bool:
        """Run one interpreter on the tests not run yet; True if another one is needed."""
        run = self.run
        skip = None
        if run.outcomes:
            skip = self.skip_file
            skip.write_text("".join(f"{test_id}\n" for test_id in run.outcomes), encoding="utf-8")
        hangs = None
        if self.hangs:
            hangs = self.scratch / "hangs.txt"
            hangs.write_text("".join(f"{entry.test_id}\n" for entry in self.hangs), encoding="utf-8")
        command = _command(run, self.python, self.results, skip, hangs, self.test_timeout)
        with open(self.log, "wb") as out:
            child = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            over_time = False
            try:
                child.wait(timeout=max(timeout, 1.0))
            except subprocess.TimeoutExpired:
                over_time = True
            finally:
                # Whatever the child started and left behind (its own process
                # group: a process forked by a test that hung, say) goes too;
                # and the child itself when over time or this process was
                # interrupted.
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()

        begun = self._take_records()
        if begun is None:
            return False
        output = _tail(self.log)
        if over_time:
            outcome, why = "timeout", f"the module ran over its time limit ({timeout:.0f} s left)"
        elif child.returncode == HUNG_STATUS or "Timeout (" in output:
            outcome, why = "timeout", f"hung for more than {self.test_timeout:g} s"
        else:
            outcome, why = "crash", f"the interpreter exited with status {child.returncode}"
        if not self.collected:
            # Ended before it could list its tests: nothing to go on with.
            run.outcomes[_module_id(run.module)] = Outcome("error", f"{why}\n{output}")
            return False
        run.outcomes[begun] = Outcome(outcome, f"{why}\n{output}")
        return not over_time

    def _take_records(self) -> str | None:
        """Take in the child's new records; return the test it was in when it ended (None: it finished)."""
        records = _read_records(self.results)
        new, self.records_read = records[self.records_read :], len(records)
        run = self.run
        current: str | None = None
        last_ended = _module_id(run.module)
        for record in new:
            kind = record["kind"]
            if kind == "start":
                run.python = record["python"]
                if record["patched"] != run.patched or (run.patched and record["runtime"] != run.runtime):
                    wanted = run.runtime if run.patched else "nothing"
                    raise RuntimeError(f"{run.module}: the child was not patched by {wanted}")
            elif kind == "unavailable":
                run.unavailable = record["reason"]
                return None
            elif kind == "collected":
                self.collected = record["ids"]
            elif kind == "begin":
                current = record["id"]
            elif kind == "end":
                current, last_ended = None, record["id"]
                if record["id"] not in self.collected:
                    # A class or module fixture: its skip shows on each of its tests.
                    self.fixtures[record["id"]] = record["outcome"]
                    if record["outcome"] == "skip":
                        continue
                run.outcomes[record["id"]] = Outcome(record["outcome"], record["detail"], record["seconds"])
            elif kind == "done":
                return None
        # Ended between two tests: in a class or module fixture.
        return current if current is not None else f"{last_ended}.<after>"

    def finish(self) -> ModuleRun:
        """The run, with an outcome for every test collected."""
        for test_id in self.collected:
            if test_id not in self.run.outcomes:
                hang = next((entry for entry in self.hangs if entry.matches(test_id)), None)
                if hang is not None:
                    why = f"not run: known to hang (known_failures.txt line {hang.line})"
                    self.run.outcomes[test_id] = Outcome("notrun", why)
                else:
                    self.run.outcomes[test_id] = _fixture_outcome(test_id, self.fixtures)
        return self.run


@functools.cache
def _python_version(python: str) -> str:
    """The version of interpreter ``python``, as "3.11"."""
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _module_id(module: str) -> str:
    """The id a module's own failure is recorded under (``test.test_x``, or the dotted name)."""
    return f"test.{module}" if module.startswith("test_") and "." not in module else module


@contextmanager
def running(
    modules: Iterable[str], *, jobs: int = JOBS, **options: Any
) -> Iterator[dict[str, Future[ModuleRun]]]:
    """Run ``modules``, ``jobs`` at a time, slowest first; yield each one's future ``ModuleRun``.

    Args:
        modules: names for ``run_module``.
        jobs: how many run at once.
        **options: passed on to ``run_module``.
    """
    order = sorted(
        modules, key=lambda m: _SLOWEST_FIRST.index(m) if m in _SLOWEST_FIRST else len(_SLOWEST_FIRST)
    )
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stdlib-suite") as pool:
        futures = {module: pool.submit(run_module, module, **options) for module in order}
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()  # those not started yet, should the caller stop early


def _fixture_outcome(test_id: str, fixtures: dict[str, str]) -> Outcome:
    """For a test that never ran: skip or error if its class's or module's fixture did, else notrun."""
    for fixture_id, outcome in fixtures.items():
        owner = fixture_id.rpartition(".")[0]
        if test_id.startswith(owner + ".") and outcome in ("skip", "error"):
            return Outcome(outcome, f"not run: {fixture_id} ended with {outcome}")
    return Outcome("notrun", "not run: the module's process ended before it")


# -- known failures --------------------------------------------------------

_VERSION = re.compile(r"^3\.\d+$")

# Starts the reason of an entry about the machine, not about corun.
MACHINE_TAG = "[machine]"

# Starts the reason of an entry for a test that hangs under corun (most by
# their nature: a loop that never blocks, so no other task ever runs; the
# reason says why).  It is not run at all, and is recorded as ``notrun``,
# which saves the watchdog's time on every run; so it is never found stale
# while the test exists: drop the tag to try the test again.
HANG_TAG = "[hang]"


@dataclass(frozen=True)
class KnownFailure:
    """One line of known_failures.txt: a test (or an fnmatch pattern) expected to fail, and why."""

    module: str
    test_id: str
    versions: str  # "all", "3.11", "3.12+", "3.10-3.11", or a comma list of those
    reason: str
    line: int

    def applies_to(self, python: str) -> bool:
        """Whether this entry covers Python ``python`` ("3.11")."""
        return any(_version_matches(part, python) for part in self.versions.split(","))

    def matches(self, test_id: str) -> bool:
        """Whether this entry names ``test_id``."""
        return fnmatch.fnmatchcase(test_id, self.test_id)

    @property
    def hangs(self) -> bool:
        """A test that hangs under corun, and is not run (see HANG_TAG)."""
        return self.reason.startswith(HANG_TAG)

    @property
    def machine(self) -> bool:
        """A failure of the test itself on some machines, with or without corun: it may pass elsewhere."""
        return self.reason.startswith(MACHINE_TAG)


def _minor(version: str) -> int:
    if not _VERSION.match(version):
        raise ValueError(f"not a Python version: {version!r}")
    return int(version.split(".")[1])


def _version_matches(part: str, python: str) -> bool:
    if part == "all":
        return True
    current = _minor(python)
    if part.endswith("+"):
        return current >= _minor(part[:-1])
    if "-" in part:
        low, high = part.split("-")
        return _minor(low) <= current <= _minor(high)
    return current == _minor(part)


def load_known_failures(path: Path = KNOWN_FAILURES) -> list[KnownFailure]:
    """Read the known-failures list; blank lines and ``#`` comments are ignored.

    Raises:
        ValueError: a malformed line (the message gives its number).
    """
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 4:
            raise ValueError(f"{path.name}:{number}: want 'module test_id python_versions reason'")
        module, test_id, versions, reason = parts
        entry = KnownFailure(module, test_id, versions, reason, line=number)
        if entry.module not in MODULES:
            raise ValueError(f"{path.name}:{number}: unknown module {entry.module!r}")
        if not entry.test_id.startswith(f"test.{entry.module}."):
            raise ValueError(f"{path.name}:{number}: {entry.test_id!r} is not a test of {entry.module}")
        try:
            entry.applies_to("3.11")
        except ValueError as exc:
            raise ValueError(f"{path.name}:{number}: {exc}") from None
        entries.append(entry)
    return entries


@dataclass
class Verdict:
    """Failures nobody listed, and listed failures that did not happen."""

    unexpected: list[tuple[str, Outcome]] = field(default_factory=list)
    stale: list[tuple[KnownFailure, str]] = field(default_factory=list)  # entry, what happened instead

    @property
    def ok(self) -> bool:
        """True when the run matched the list exactly."""
        return not self.unexpected and not self.stale


def check(run: ModuleRun, known: list[KnownFailure]) -> Verdict:
    """Compare a module's run with the known failures for its Python version."""
    entries = [k for k in known if k.module == run.module and k.applies_to(run.python)]
    verdict = Verdict()
    failing = {test_id: o for test_id, o in sorted(run.outcomes.items()) if o.outcome in FAILING}
    for test_id, outcome in failing.items():
        if not any(entry.matches(test_id) for entry in entries):
            verdict.unexpected.append((test_id, outcome))
    for entry in entries:
        if not entry.machine and not any(entry.matches(test_id) for test_id in failing):
            seen = sorted({o.outcome for t, o in run.outcomes.items() if entry.matches(t)})
            verdict.stale.append((entry, "/".join(seen) or "not collected"))
    return verdict


def _summary_line(detail: str) -> str:
    """The line of a traceback that says what went wrong (its last non-blank line)."""
    lines = [line for line in detail.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def format_verdict(run: ModuleRun, verdict: Verdict, *, details: bool = True) -> str:
    """A readable account of what did not match the known failures."""
    out = []
    for test_id, outcome in verdict.unexpected:
        out.append(f"unexpected {outcome.outcome}: {test_id}")
        if details and outcome.detail:
            out.extend("    " + line for line in outcome.detail.strip().splitlines()[-12:])
    for entry, seen in verdict.stale:
        out.append(
            f"stale known failure (known_failures.txt line {entry.line}): {entry.test_id} "
            f"on {run.python} was: {seen}; remove or narrow the entry"
        )
    return "\n".join(out)


def _counts(run: ModuleRun) -> str:
    order = ["pass", "skip", "xfail", *sorted(FAILING)]
    return ", ".join(f"{run.count(o)} {o}" for o in order if run.count(o))


def main(argv: list[str] | None = None) -> int:
    """Run the modules named (default: all) and report against the known failures."""
    parser = argparse.ArgumentParser(description="Run CPython's test modules under corun.")
    parser.add_argument("modules", nargs="*", help="modules to run (default: all, or the --group's)")
    parser.add_argument("--group", choices=[g.name for g in GROUPS], help="run this group's modules")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run them with")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--unpatched", action="store_true", help="run without corun (the baseline)")
    baseline.add_argument("--gevent", action="store_true", help="run under gevent's patch_all() instead")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"modules run at once (default {JOBS})")
    parser.add_argument(
        "--test-timeout", type=float, default=TEST_TIMEOUT, help="seconds before a test counts as hung"
    )
    parser.add_argument("--json", help="also write every outcome to this file")
    args = parser.parse_args(argv)
    modules = args.modules or [
        module for group in GROUPS if args.group in (None, group.name) for module in group.modules
    ]

    known = load_known_failures()
    runs = []
    status = 0
    options: dict[str, Any] = {
        "python": args.python,
        "patched": not args.unpatched,
        "runtime": "gevent" if args.gevent else "corun",
        "test_timeout": args.test_timeout,
    }
    with running(modules, jobs=args.jobs, **options) as futures:
        for module in modules:
            run = futures[module].result()
            runs.append(run)
            if run.unavailable:
                print(f"{run.module}: not run: {run.unavailable}")
                continue
            print(f"{run.module} ({run.python}, {run.elapsed:.0f} s): {_counts(run)}", flush=True)
            if not args.unpatched and not args.gevent:
                verdict = check(run, known)
                if not verdict.ok:
                    status = 1
                    print(format_verdict(run, verdict))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(run) for run in runs], f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
