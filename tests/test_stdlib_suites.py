"""CPython's own test modules under corun's ``patch_all()``: every failure is a known one, with its reason.

The first tests check the machinery (hangs, crashes, the known-failures
list) on small made-up modules; the ``stdlib`` ones run CPython's modules,
each in a fresh interpreter, with this interpreter.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from .stdlib.suites import (
    MODULES,
    WALL_LIMIT,
    KnownFailure,
    ModuleRun,
    Outcome,
    check,
    format_verdict,
    load_known_failures,
    run_module,
    running,
)

# -- the machinery -----------------------------------------------------------

FAKE_MODULE = """
import os
import socket
import time
import unittest


class Cases(unittest.TestCase):
    def test_a_passes_patched(self):
        # Only true once corun has patched: the child really runs under corun.
        from corun import monkey
        self.assertTrue(monkey.is_module_patched("socket"))
        self.assertIsNot(socket.socket, monkey.get_original("socket", "socket"))

    def test_b_crashes(self):
        os._exit(3)

    def test_c_hangs(self):
        time.sleep(60)

    def test_d_fails(self):
        self.assertEqual(1, 2)

    @unittest.skip("not today")
    def test_e_skipped(self):
        pass

    def test_f_subtest_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                if i == 0:
                    self.skipTest("a skipped subtest does not skip its test")
                self.assertLess(i, 2)


class BrokenFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("no fixture")

    def test_never_runs(self):
        pass
"""


def test_each_test_gets_its_outcome_and_a_hang_or_crash_costs_only_that_test(tmp_path: Path) -> None:
    (tmp_path / "corun_fake_suite.py").write_text(FAKE_MODULE, encoding="utf-8")
    run = run_module("corun_fake_suite", test_timeout=2.0, wall_limit=30, pythonpath=str(tmp_path))
    outcomes = {test_id.rpartition(".")[2]: o.outcome for test_id, o in run.outcomes.items()}
    assert outcomes == {
        "test_a_passes_patched": "pass",
        "test_b_crashes": "crash",
        "test_c_hangs": "timeout",
        "test_d_fails": "fail",
        "test_e_skipped": "skip",
        "test_f_subtest_fails": "fail",
        "setUpClass": "error",
        "test_never_runs": "error",
    }
    assert run.restarts == 2
    details = {test_id.rpartition(".")[2]: o.detail for test_id, o in run.outcomes.items()}
    assert "status 3" in details["test_b_crashes"]
    assert "hung for more than 2 s" in details["test_c_hangs"]
    assert "test_c_hangs" in details["test_c_hangs"]  # the stack dumped by the watchdog
    assert "AssertionError: 1 != 2" in details["test_d_fails"]
    assert "(i=2)" in details["test_f_subtest_fails"]


def test_the_baseline_runs_without_corun(tmp_path: Path) -> None:
    (tmp_path / "corun_fake_baseline.py").write_text(
        textwrap.dedent(
            """
            import sys
            import unittest

            class Cases(unittest.TestCase):
                def test_unpatched(self):
                    self.assertNotIn("corun.monkey", sys.modules)
            """
        ),
        encoding="utf-8",
    )
    test_id = "corun_fake_baseline.Cases.test_unpatched"
    for patched, outcome in ((False, "pass"), (True, "fail")):
        run = run_module("corun_fake_baseline", patched=patched, wall_limit=30, pythonpath=str(tmp_path))
        assert (run.patched, run.outcomes[test_id].outcome) == (patched, outcome)


def test_a_missing_module_is_reported_unavailable_not_failed() -> None:
    run = run_module("test_corun_no_such_module", wall_limit=30)
    assert run.unavailable is not None
    assert "test.test_corun_no_such_module" in run.unavailable
    assert run.outcomes == {}


def _entry(test_id: str, versions: str = "all", line: int = 1) -> KnownFailure:
    return KnownFailure("test_socket", test_id, versions, "a reason", line)


def test_check_reports_unlisted_failures_and_stale_entries() -> None:
    run = ModuleRun(
        module="test_socket",
        python="3.11",
        patched=True,
        outcomes={
            "test.test_socket.A.test_listed": Outcome("fail"),
            "test.test_socket.A.test_unlisted": Outcome("timeout", "hung"),
            "test.test_socket.A.test_fixed": Outcome("pass"),
            "test.test_socket.B.test_one": Outcome("error"),
            "test.test_socket.B.test_two": Outcome("error"),
        },
    )
    known = [
        _entry("test.test_socket.A.test_listed"),
        _entry("test.test_socket.A.test_fixed", line=2),
        _entry("test.test_socket.B.*", "3.11+", line=3),
        _entry("test.test_socket.A.test_unlisted", "3.12", line=4),  # another Python's
        _entry("test.test_socket.A.test_gone", "3.10-3.11", line=5),
        # About the machine: may pass elsewhere, so never stale.
        KnownFailure("test_socket", "test.test_socket.A.test_fixed", "all", "[machine] no vsock here", 6),
    ]
    verdict = check(run, known)
    assert [test_id for test_id, _ in verdict.unexpected] == ["test.test_socket.A.test_unlisted"]
    assert [(entry.line, seen) for entry, seen in verdict.stale] == [(2, "pass"), (5, "not collected")]
    report = format_verdict(run, verdict)
    assert "unexpected timeout: test.test_socket.A.test_unlisted" in report
    assert "known_failures.txt line 2" in report


def test_the_known_failures_list_is_well_formed() -> None:
    entries = load_known_failures()
    assert entries, "the list is read"
    for entry in entries:
        assert entry.module in MODULES
        # A reason says why, in words; not a bare word or a placeholder.
        assert len(entry.reason.split()) >= 5, f"line {entry.line}: give a real reason"
    ids = [(entry.module, entry.test_id, entry.versions) for entry in entries]
    assert len(ids) == len(set(ids)), "an entry is listed twice"


@pytest.mark.parametrize(
    "line",
    [
        "test_socket test.test_socket.A.test_x 3.11",  # no reason
        "test_nosuch test.test_nosuch.A.test_x all some reason",
        "test_socket test.test_ssl.A.test_x all wrong module",
        "test_socket test.test_socket.A.test_x 3.x a bad version",
    ],
)
def test_malformed_known_failures_are_rejected(tmp_path: Path, line: str) -> None:
    path = tmp_path / "known.txt"
    path.write_text(textwrap.dedent(f"# a comment\n\n{line}\n"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"known\.txt:3"):
        load_known_failures(path)


# -- CPython's own suites ------------------------------------------------------


@pytest.fixture(scope="module")
def stdlib_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[ModuleRun]]]:
    """Start every selected module at once (a few at a time); each test then waits for its own."""
    selected = [
        str(item.callspec.params["module"])
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_stdlib_module_under_corun"
    ]
    with running(selected) as futures:
        yield futures


@pytest.mark.stdlib
@pytest.mark.timeout(WALL_LIMIT + 60)
@pytest.mark.parametrize("module", MODULES)
def test_stdlib_module_under_corun(module: str, stdlib_runs: dict[str, Future[ModuleRun]]) -> None:
    run = stdlib_runs[module].result()
    if run.unavailable:
        pytest.skip(f"{module}: {run.unavailable}")
    assert run.outcomes, f"{module}: no test ran"
    verdict = check(run, load_known_failures())
    assert verdict.ok, f"{module} on Python {run.python}:\n{format_verdict(run, verdict)}"
