"""Run one of CPython's own test modules and record every test's outcome, one JSON line per event.

Meant to run in a fresh interpreter, under corun's runner so that patching
comes first::

    python -m corun run_one.py test_socket --results FILE

or plainly (``python run_one.py ...``) for the unpatched baseline, or
under ``python -m gevent.monkey`` for gevent's reference run.  The
driver (``suites.py``) reads the results file while deciding what happened:
a test that began and never ended hung (the watchdog ends the process) or
crashed the interpreter; the driver then starts this script again with
``--skip`` naming the tests already recorded, so the rest of the module
still runs.

Records (one JSON object a line, flushed as written):
``{"kind": "start", "python": "3.11", "patched": true, "runtime": "corun"}``;
``{"kind": "collected", "ids": [...]}``; ``{"kind": "begin", "id": ...}``;
``{"kind": "end", "id": ..., "outcome": ..., "detail": ..., "seconds": ...}``;
``{"kind": "unavailable", "reason": ...}`` (no ``test`` package, or the
module skipped itself); ``{"kind": "done"}``.

``--only`` runs a module in part (its test classes matching a pattern);
``--hangs`` names tests known to hang, which are collected but not run;
``--long`` gives a test slow by design more than ``--test-timeout``.

``test.support``'s thread counting (``threading_helper.threading_setup``,
``threading_cleanup``, ``reap_threads``, ``wait_threads_exit``) is turned off
in every run, patched or not, as it was for the reference run: it counts OS
threads, which says nothing about threads that are tasks, and the runtime's
own OS threads (its thread pool, this script's watchdog) come and go.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import fnmatch
import gc
import importlib
import json
import os
import re
import signal
import sys
import time
import traceback
import types
import unittest
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = ["RecordingResult", "Watchdog", "main"]

# Outcomes from best to worst: a test with subtests keeps its worst.
OUTCOMES = ("pass", "skip", "xfail", "xpass", "fail", "error")

# The resources test.support knows.  Everything is on as for a full CPython
# run, except what reaches other machines: `urlfetch` never, `network` only
# where asked for (test_socketserver needs it to run at all and talks only
# to localhost).
RESOURCES = (
    "audio",
    "curses",
    "largefile",
    "decimal",
    "cpu",
    "subprocess",
    "gui",
    "walltime",
    "tzdata",
)

# How long the detail of a failure may be in the record: enough for the
# traceback's end, where the assertion is.
DETAIL_LIMIT = 3000

# A fixture error is reported by unittest as "setUpClass (test.test_x.Case)".
_FIXTURE = re.compile(r"^(\w+) \((.+)\)$")


class _Recorder:
    """Writes one JSON record per line to the results file and flushes it at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, **record: Any) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


def _test_id(test: Any) -> str:
    """The test's id; a fixture error ("setUpClass (pkg.Case)") becomes "pkg.Case.setUpClass"."""
    unique = getattr(test, _UNIQUE_ID, None)
    if unique is not None:
        return str(unique)
    test_id = str(test.id())
    match = _FIXTURE.match(test_id)
    if match:
        return f"{match.group(2)}.{match.group(1)}"
    return test_id


# Where _name_tests leaves a test's id when another test has the same one.
_UNIQUE_ID = "_stdlib_suite_id"


def _name_tests(suite: unittest.TestSuite) -> None:
    """Give the second and later tests sharing an id (two doctest suites of one module) "id#2", "id#3"."""
    seen: dict[str, int] = {}
    for test in _iter_tests(suite):
        test_id = _test_id(test)
        seen[test_id] = seen.get(test_id, 0) + 1
        if seen[test_id] > 1:
            setattr(test, _UNIQUE_ID, f"{test_id}#{seen[test_id]}")


def _detail(err: Any) -> str:
    """The end of a formatted exception: the assertion and the lines that led to it."""
    if isinstance(err, str):
        text = err
    else:
        text = "".join(traceback.format_exception(*err))
    return text[-DETAIL_LIMIT:]


class Watchdog:
    """Ends the process when one step of the run (a test, or the fixtures between two) takes too long.

    Before it ends the process it prints every thread's stack and, under
    corun, every suspended task's: a hung test is usually parked in a task
    while the thread sits in the hub's poll, which is all a plain thread dump
    would show.  It runs in a real OS thread (the originals, should threads be
    patched) polling a deadline.  ``faulthandler`` stands behind it, a little
    later, for a hang that holds the GIL.
    """

    # The exit status that tells the driver "hung", as coreutils' timeout uses.
    EXIT_STATUS = 124
    _POLL_SECONDS = 0.1
    _BACKSTOP_SECONDS = 10.0

    def __init__(self, timeout: float, longer: dict[str, float] | None = None) -> None:
        self.timeout = timeout
        self.longer = longer or {}  # steps (test ids) allowed more than ``timeout``
        self._sleep = _original("time", "sleep")
        self._clock = _original("time", "monotonic")
        self.arm("importing the module")
        _original("_thread", "start_new_thread")(self._watch, ())

    def arm(self, what: str) -> None:
        """Start the clock again for the next step, ``what`` (said if it hangs)."""
        self.what = what
        self.allowed = self.longer.get(what, self.timeout)
        self._deadline = self._clock() + self.allowed
        faulthandler.dump_traceback_later(self.allowed + self._BACKSTOP_SECONDS, exit=True)

    def _watch(self) -> None:
        while self._clock() < self._deadline:
            self._sleep(self._POLL_SECONDS)
        # The process's own stderr: a test may have swapped sys.stderr for a buffer.
        err = sys.__stderr__
        assert err is not None
        print(f"\nTimeout: {self.what} took more than {self.allowed:g} s", file=err)
        faulthandler.dump_traceback(err, all_threads=True)
        _print_task_stacks(err)
        err.flush()
        os._exit(self.EXIT_STATUS)


def _original(module_name: str, name: str) -> Any:
    """``module.name`` as it was before corun (or gevent) patched it (as it is, when not patched)."""
    monkey = sys.modules.get("corun.monkey")
    if monkey is not None:
        return monkey.get_original(module_name, name)
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None:
        return gevent_monkey.get_original(module_name, name)
    return getattr(importlib.import_module(module_name), name)


def _runtime() -> str:
    """What patched this interpreter: "corun", "gevent" or "none"."""
    for runtime in ("corun", "gevent"):
        monkey = sys.modules.get(f"{runtime}.monkey")
        if monkey is not None and monkey.is_module_patched("socket"):
            return runtime
    return "none"


def _print_task_stacks(file: TextIO) -> None:
    """Print the stack of every suspended greenlet (every corun task but the running one)."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return
    for obj in gc.get_objects():
        if isinstance(obj, greenlet.greenlet) and obj.gr_frame is not None:
            print(f"\nSuspended {obj!r} (most recent call last):", file=file)
            traceback.print_stack(obj.gr_frame, file=file)


class RecordingResult(unittest.TestResult):
    """A unittest result that records every test's outcome, with a watchdog on each step."""

    def __init__(self, recorder: _Recorder, watchdog: Watchdog) -> None:
        super().__init__()
        self.recorder = recorder
        self.watchdog = watchdog
        self.current: dict[str, tuple[str, str]] = {}  # id -> (outcome, detail) so far
        self._started: set[str] = set()  # the tests between startTest and stopTest
        self._began: dict[str, float] = {}  # when each of them started

    def _set(self, test: Any, outcome: str, detail: str = "") -> None:
        test_id = _test_id(test)
        old = self.current.get(test_id)
        if old is None or OUTCOMES.index(outcome) >= OUTCOMES.index(old[0]):
            self.current[test_id] = (outcome, detail or (old[1] if old else ""))
        if test_id not in self._started:
            # Never started: a class or module fixture's error or skip, or
            # (on 3.12.1) a skipped test.  Its outcome is final.
            self._finish(test_id)

    def _finish(self, test_id: str) -> None:
        outcome, detail = self.current.pop(test_id, ("pass", ""))
        began = self._began.pop(test_id, None)
        seconds = 0.0 if began is None else round(time.monotonic() - began, 3)
        self.recorder.write(kind="end", id=test_id, outcome=outcome, detail=detail, seconds=seconds)

    # -- unittest's hooks -----------------------------------------------------

    def stopTestRun(self) -> None:
        self.watchdog.arm("the end of the run")

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        test_id = _test_id(test)
        self._started.add(test_id)
        self._began[test_id] = time.monotonic()
        self.recorder.write(kind="begin", id=test_id)
        self.watchdog.arm(test_id)

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        test_id = _test_id(test)
        if test_id not in self._started:
            return  # 3.12.1 skips a test without starting it, yet stops it: it has its record
        self._started.discard(test_id)
        self._finish(test_id)
        self.watchdog.arm(f"the fixtures after {test_id}")

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._set(test, "pass")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._set(test, "fail", _detail(err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        self._set(test, "error", _detail(err))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        if hasattr(test, "test_case"):
            return  # a subtest skipped: its test goes on, and has its own outcome
        self._set(test, "skip", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._set(test, "xpass", "unexpected success")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        # Subtests roll up into their test: it fails if any of them does.
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "fail" if failed else "error", f"{subtest.id()}\n{_detail(err)}")


def _iter_tests(suite: Iterable[Any]) -> Iterator[unittest.TestCase]:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _iter_tests(item)
        else:
            yield item


def _in_classes(test_id: str, patterns: list[str] | None) -> bool:
    """Whether the test's class name matches one of ``patterns`` (None: every test runs)."""
    if patterns is None:
        return True
    class_name = test_id.split(".")[-2] if test_id.count(".") >= 2 else ""
    return any(fnmatch.fnmatchcase(class_name, pattern) for pattern in patterns)


def _drop(
    suite: unittest.TestSuite,
    skip: set[str],
    only: list[str] | None = None,
    patterns: Iterable[str] = (),
) -> None:
    """Remove from ``suite``, in place, the tests in ``skip`` or ``patterns`` and those outside ``only``."""
    patterns = list(patterns)
    kept = []
    for item in suite._tests:
        if isinstance(item, unittest.TestSuite):
            _drop(item, skip, only, patterns)
            kept.append(item)
        else:
            test_id = _test_id(item)
            if (
                test_id not in skip
                and _in_classes(test_id, only)
                and not any(fnmatch.fnmatchcase(test_id, p) for p in patterns)
            ):
                kept.append(item)
    suite._tests = kept


def _restore_sigint() -> None:
    """Make Ctrl-C raise KeyboardInterrupt again if this process inherited SIGINT ignored.

    A shell without job control starts its background commands with SIGINT
    ignored, and Python then leaves it ignored; the tests of
    KeyboardInterrupt, ``interrupt_main`` and ``raise_signal(SIGINT)`` (and
    the children they start, which inherit it) would fail for that alone.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _configure_support(support: Any, network: bool) -> None:
    """Set test.support up as CPython's own test runner does, with this run's resources."""
    support.verbose = 0
    support.use_resources = [*RESOURCES, "network"] if network else list(RESOURCES)
    _stop_thread_counting()


def _stop_thread_counting() -> None:
    """Turn threading_helper's OS-thread counting into no-ops (the module docstring says why)."""
    helper: Any = importlib.import_module("test.support.threading_helper")

    def threading_setup() -> tuple[int, list[Any]]:
        return 0, []

    def threading_cleanup(*original_values: Any) -> None:
        pass

    @contextlib.contextmanager
    def wait_threads_exit(timeout: float | None = None) -> Iterator[None]:
        yield

    # reap_threads looks the other two up when it runs, so it needs no twin.
    helper.threading_setup = threading_setup
    helper.threading_cleanup = threading_cleanup
    helper.wait_threads_exit = wait_threads_exit


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="a module of the test package (test_socket), or a dotted name")
    parser.add_argument("--results", required=True, help="file to append the JSON records to")
    parser.add_argument("--skip", help="file listing test ids not to run, one a line")
    parser.add_argument(
        "--hangs", help="file listing tests known to hang, not to run (fnmatch patterns, one a line)"
    )
    parser.add_argument(
        "--test-timeout", type=float, default=60.0, help="seconds before a test counts as hung"
    )
    parser.add_argument(
        "--long",
        action="append",
        default=[],
        metavar="TEST_ID=SECONDS",
        help="give this test longer than --test-timeout before it counts as hung (repeatable)",
    )
    parser.add_argument("--network", action="store_true", help="enable the network resource")
    parser.add_argument(
        "--only",
        action="append",
        metavar="CLASS",
        help="run only the test classes matching this fnmatch pattern (repeatable)",
    )
    return parser.parse_args(argv)


# Test modules that CPython's own test files assemble from a helper module:
# name -> (helper, start method).  Built here as CPython's file builds it
# (``install_tests_in_module_dict``), under the same name, so that every
# Python has them (3.11.7 and 3.12.1 here ship the helper without the
# file) and a test has one id on all of them (3.13 splits the file into a
# package of four).
ASSEMBLED = {"test.test_multiprocessing_fork": ("test._test_multiprocessing", "fork")}


def _assemble(import_name: str) -> Any:
    """Build the module ``import_name`` of ``ASSEMBLED`` and put it in ``sys.modules``."""
    helper_name, start_method = ASSEMBLED[import_name]
    helper = importlib.import_module(helper_name)
    module = types.ModuleType(import_name)
    sys.modules[import_name] = module  # where unittest looks up setUpModule
    helper.install_tests_in_module_dict(vars(module), start_method)
    return module


def _import(import_name: str, recorder: _Recorder) -> Any:
    """Import the test module; None (and an ``unavailable`` record) if it cannot run here."""
    try:
        if import_name in ASSEMBLED:
            return _assemble(import_name)
        return importlib.import_module(import_name)
    except unittest.SkipTest as exc:
        recorder.write(kind="unavailable", reason=f"the module skipped itself: {exc}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("test", import_name):
            raise  # something the module imports is missing: a failure, not a skip
        what = "test package" if exc.name == "test" else f"module {exc.name}"
        recorder.write(kind="unavailable", reason=f"this interpreter has no {what}")
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the module named on the command line; return the exit status (0 once it ran)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    # A module of CPython's test package by its short name, or any module by its dotted name.
    import_name = args.module
    if import_name.startswith("test_") and "." not in import_name:
        import_name = f"test.{import_name}"
    skip: set[str] = set()
    if args.skip:
        with open(args.skip, encoding="utf-8") as f:
            skip = {line.strip() for line in f if line.strip()}
    hangs: list[str] = []
    if args.hangs:
        with open(args.hangs, encoding="utf-8") as f:
            hangs = [line.strip() for line in f if line.strip()]

    with open(args.results, "a", encoding="utf-8") as stream:
        recorder = _Recorder(stream)
        runtime = _runtime()
        recorder.write(
            kind="start",
            python=f"{sys.version_info[0]}.{sys.version_info[1]}",
            patched=runtime != "none",
            runtime=runtime,
        )
        faulthandler.enable()
        _restore_sigint()
        # From here on, importing and collecting can hang too.
        longer = {test_id: float(seconds) for test_id, _, seconds in (a.rpartition("=") for a in args.long)}
        watchdog = Watchdog(args.test_timeout, longer)
        support = _import("test.support", recorder)
        if support is None:
            return 0
        _configure_support(support, args.network)
        # As unittest's own runner does: show each warning once.
        warnings.simplefilter("default")
        module = _import(import_name, recorder)
        if module is None:
            return 0

        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        _name_tests(suite)
        _drop(suite, set(), args.only)
        if not skip:
            recorder.write(kind="collected", ids=[_test_id(t) for t in _iter_tests(suite)])
        _drop(suite, skip, patterns=hangs)
        result = RecordingResult(recorder, watchdog)
        watchdog.arm("the first fixtures")
        result.startTestRun()
        try:
            suite.run(result)
        finally:
            result.stopTestRun()
        recorder.write(kind="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
