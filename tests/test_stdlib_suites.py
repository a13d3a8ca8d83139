"""CPython's own test modules under corun's ``patch_all()``: every failure is a known one, with its reason.

The first tests check the machinery (hangs, crashes, the known-failures
list) on small made-up modules; the ``stdlib`` ones run CPython's modules,
each in a fresh interpreter, with this interpreter.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from .stdlib import suites
from .stdlib.compare import compare, load_reference, reference_lines
from .stdlib.suites import (
    GROUPS,
    HANG_TAG,
    MODULES,
    WALL_LIMIT,
    KnownFailure,
    ModuleRun,
    Outcome,
    check,
    format_verdict,
    group_of,
    in_part,
    load_known_failures,
    modules_for,
    run_module,
    running,
)

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"

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


PARTS_MODULE = """
import unittest


class KeepThis(unittest.TestCase):
    def test_one(self):
        pass


class KeepThat(unittest.TestCase):
    def test_two(self):
        pass


class DropThis(unittest.TestCase):
    def test_three(self):
        raise RuntimeError("outside the part that runs")


def load_tests(loader, tests, pattern):
    # Two suites whose tests share an id, as test_threading_local's two doctest suites do.
    tests.addTest(KeepThis("test_one"))
    return tests
"""


def test_a_module_run_in_part_runs_only_its_classes_and_repeated_ids_stay_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "corun_fake_parts.py").write_text(PARTS_MODULE, encoding="utf-8")
    monkeypatch.setitem(suites.PARTS, "corun_fake_parts", ("Keep*",))
    run = run_module("corun_fake_parts", patched=False, wall_limit=30, pythonpath=str(tmp_path))
    assert {test_id: o.outcome for test_id, o in run.outcomes.items()} == {
        "corun_fake_parts.KeepThis.test_one": "pass",
        "corun_fake_parts.KeepThat.test_two": "pass",
        "corun_fake_parts.KeepThis.test_one#2": "pass",
    }
    assert in_part("corun_fake_parts", "corun_fake_parts.KeepThat.test_two")
    assert not in_part("corun_fake_parts", "corun_fake_parts.DropThis.test_three")
    assert in_part("test_socket", "test.test_socket.AnyClass.test_x")  # run whole


def test_a_test_slow_by_design_gets_its_longer_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "corun_fake_long.py").write_text(
        textwrap.dedent(
            """
            import time
            import unittest

            class Cases(unittest.TestCase):
                def test_slow(self):
                    time.sleep(1.0)

                def test_hangs(self):
                    time.sleep(60)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setitem(suites.LONG_TESTS, "corun_fake_long.Cases.test_slow", 10.0)
    run = run_module("corun_fake_long", test_timeout=0.5, wall_limit=30, pythonpath=str(tmp_path))
    assert run.outcomes["corun_fake_long.Cases.test_slow"].outcome == "pass"
    assert run.outcomes["corun_fake_long.Cases.test_hangs"].outcome == "timeout"


def test_a_known_hang_is_not_run_and_counts_as_its_known_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "corun_fake_hang.py").write_text(
        textwrap.dedent(
            """
            import unittest

            class Cases(unittest.TestCase):
                def test_spins(self):
                    while True:
                        pass

                def test_fine(self):
                    pass
            """
        ),
        encoding="utf-8",
    )
    entry = KnownFailure(
        "corun_fake_hang", "corun_fake_hang.Cases.test_spins", "all", f"{HANG_TAG} spins without blocking", 7
    )
    monkeypatch.setattr(suites, "MODULES", (*MODULES, "corun_fake_hang"))
    monkeypatch.setattr(suites, "load_known_failures", lambda: [entry])
    run = run_module("corun_fake_hang", test_timeout=60, wall_limit=30, pythonpath=str(tmp_path))
    spins = run.outcomes["corun_fake_hang.Cases.test_spins"]
    assert (spins.outcome, spins.detail) == ("notrun", "not run: known to hang (known_failures.txt line 7)")
    assert run.outcomes["corun_fake_hang.Cases.test_fine"].outcome == "pass"
    assert run.restarts == 0
    assert check(run, [entry]).ok


def test_a_child_started_with_sigint_ignored_gets_keyboard_interrupt_back(tmp_path: Path) -> None:
    (tmp_path / "corun_fake_sigint.py").write_text(
        textwrap.dedent(
            """
            import signal
            import unittest

            class Cases(unittest.TestCase):
                def test_ctrl_c(self):
                    with self.assertRaises(KeyboardInterrupt):
                        signal.raise_signal(signal.SIGINT)
            """
        ),
        encoding="utf-8",
    )
    # As a shell without job control starts a background command.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run = run_module("corun_fake_sigint", wall_limit=30, pythonpath=str(tmp_path))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run.outcomes["corun_fake_sigint.Cases.test_ctrl_c"].outcome == "pass"


def test_a_reference_made_from_two_runs_compares_only_the_part_that_runs(tmp_path: Path) -> None:
    def os_run(runtime: str, patched: bool, **outcomes: str) -> dict[str, ModuleRun]:
        run = ModuleRun("test_os", "3.11", patched, runtime)
        run.outcomes = {f"test.test_os.{name.replace('__', '.')}": Outcome(o) for name, o in outcomes.items()}
        return {"test_os": run}

    unpatched = os_run("corun", False, ForkTests__test_fork="pass", FileTests__test_read="pass")
    gevent = os_run("gevent", True, ForkTests__test_fork="pass", FileTests__test_read="fail")
    path = tmp_path / "reference.tsv"
    path.write_text("\n".join(reference_lines(unpatched, gevent)) + "\n", encoding="utf-8")
    reference = load_reference(path)
    assert reference["test_os"]["test.test_os.FileTests.test_read"] == ("pass", "fail")

    ours = os_run("corun", True, ForkTests__test_fork="fail")
    result = compare(reference, ours)
    # FileTests is outside test_os's part: neither counted nor listed.
    assert result.rows[1] == ["test_os", "1", "1", "1", "0"]
    assert result.behind_gevent == ["test.test_os.ForkTests.test_fork: fail: "]


def test_the_reference_runtime_must_be_a_known_one() -> None:
    with pytest.raises(ValueError, match="runtime"):
        run_module("test_socket", runtime="eventlet")


def test_each_module_is_in_one_group_and_the_groups_say_where_they_run() -> None:
    assert len(MODULES) == len(set(MODULES))
    for group in GROUPS:
        assert group.why or group.pythons == "all", f"{group.name}: say why it does not run everywhere"
        for module in group.modules:
            assert group_of(module) is group
    for python in ("3.10", "3.11", "3.12", "3.13"):
        assert set(modules_for(python)) >= set(group_of("test_socket").modules)


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
    on_this_python = modules_for(PYTHON)
    selected = [
        module
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_stdlib_module_under_corun"
        for module in [str(item.callspec.params["module"])]
        if module in on_this_python
    ]
    with running(selected) as futures:
        yield futures


@pytest.mark.stdlib
# One worker process runs every module, a few at a time (the fixture above), when the suite is spread
# over several.
@pytest.mark.xdist_group("stdlib")
@pytest.mark.timeout(WALL_LIMIT + 60)
@pytest.mark.parametrize("module", MODULES)
def test_stdlib_module_under_corun(module: str, stdlib_runs: dict[str, Future[ModuleRun]]) -> None:
    if module not in stdlib_runs:
        group = group_of(module)
        pytest.skip(f"{module}: the {group.name} group runs on Python {group.pythons}: {group.why}")
    run = stdlib_runs[module].result()
    if run.unavailable:
        pytest.skip(f"{module}: {run.unavailable}")
    assert run.outcomes, f"{module}: no test ran"
    verdict = check(run, load_known_failures())
    assert verdict.ok, f"{module} on Python {run.python}:\n{format_verdict(run, verdict)}"
