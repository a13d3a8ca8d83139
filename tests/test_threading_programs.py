"""Unmodified ``threading`` programs become cooperative under ``patch_all()``.

Each program in ``tests/programs/`` is ordinary stdlib threading code that
never mentions corun. It runs in a fresh interpreter three ways: with plain
python (so the expected result is the stdlib's own), with
``from corun import monkey; monkey.patch_all()`` as its first line, and under
``python -m corun``. It prints what it saw as JSON on its last line.

Concurrency is shown by time with wide margins: work that would take N x D
one after another finishing in about D. That patched threads are tasks and not
OS threads is shown by the process itself: its thread count and its address
space while a thousand of them sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, process_group

PROGRAMS = Path(__file__).resolve().parent / "programs"
PROLOGUE = "from corun import monkey; monkey.patch_all()\n"
HOW = ["plain", "patch_all", "python -m corun"]
PATCHED = HOW[1:]


def program_command(how: str, name: str, tmp_path: Path) -> list[str]:
    """The command line that runs ``tests/programs/<name>`` the way ``how`` says."""
    program = PROGRAMS / name
    if how == "plain":
        return [sys.executable, str(program)]
    if how == "patch_all":
        program = tmp_path / name
        program.write_text(PROLOGUE + (PROGRAMS / name).read_text())
        return [sys.executable, str(program)]
    return [sys.executable, "-m", "corun", str(program)]


def program_env() -> dict[str, str]:
    """The environment the programs run in: this checkout importable, faulthandler on."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env.pop("PYTHONWARNINGS", None)
    return env


class ProgramTimedOut(AssertionError):
    """A program did not finish in time; the message holds the stacks it was stuck in."""


def start_program(
    how: str, name: str, *args: str, tmp_path: Path, timeout: float = 15
) -> subprocess.CompletedProcess[str]:
    """Run ``tests/programs/<name>`` the way ``how`` says; return the finished process.

    Raises:
        ProgramTimedOut: still running after ``timeout`` seconds.
    """
    command = [*program_command(how, name, tmp_path), *args]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with process_group(command, cwd=tmp_path, env=program_env(), **pipes) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # faulthandler (on in the program's environment) prints every thread's stack on SIGABRT.
            proc.send_signal(signal.SIGABRT)
            try:
                stdout, stderr = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            raise ProgramTimedOut(
                f"{how} {name} still running after {timeout} s\nstdout:\n{stdout}\nstderr:\n{stderr}"
            ) from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def run_program(how: str, name: str, *args: str, tmp_path: Path) -> dict[str, Any]:
    """Run a program that must succeed silently; return the JSON report on its last line."""
    proc = start_program(how, name, *args, tmp_path=tmp_path)
    output = f"{how} {name}: exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, output
    assert proc.stderr == "", output
    report: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return report


@pytest.fixture(params=HOW)
def how(request: pytest.FixtureRequest) -> str:
    """How the program runs: plain python, patch_all as its first line, or python -m corun."""
    param: str = request.param
    return param


@pytest.fixture(params=PATCHED)
def patched(request: pytest.FixtureRequest) -> str:
    """The two patched ways only."""
    param: str = request.param
    return param


# -- 1. a thread per request ---------------------------------------------------------

# 1000 OS threads reserve a stack each (8 MiB by default on Linux, never less
# than 1 MiB in practice): gigabytes of address space. Tasks reserve nothing.
OS_THREAD_RESERVE_KIB = 1000 * 1024
TASK_RESERVE_LIMIT_KIB = 100 * 1024
# Resident memory is mostly the Python objects (Thread, its locks, its frame),
# the same both ways; an OS thread adds a few touched stack pages and kernel
# memory RSS does not show. So RSS gets a ceiling, not a comparison.
RSS_LIMIT_KIB = 64 * 1024


def test_a_thousand_sleeping_threads(how: str, tmp_path: Path) -> None:
    result = run_program(how, "sleepers.py", tmp_path=tmp_path)
    assert result["answers_ok"]
    # One after another: 2000 s. All at once: about 2 s.
    assert 1.9 <= result["elapsed"] < 6, result
    assert result["active_while_sleeping"] == 1001
    assert result["active_after"] == 1
    assert result["rss_growth_kib"] < RSS_LIMIT_KIB, result
    if how == "plain":
        # What the patched runs are measured against.
        assert result["os_threads_while_sleeping"] == 1001
        assert result["size_growth_kib"] > OS_THREAD_RESERVE_KIB, result
    else:
        # One OS thread runs them all; nothing here needs the hub's thread pool.
        assert result["os_threads_while_sleeping"] == 1, result
        assert result["size_growth_kib"] < TASK_RESERVE_LIMIT_KIB, result


# -- 2. producer / consumer ----------------------------------------------------------


def test_producers_and_consumers_over_a_bounded_queue(how: str, tmp_path: Path) -> None:
    result = run_program(how, "producer_consumer.py", tmp_path=tmp_path)
    assert result["consumed"] == 3000
    assert result["distinct"] == 3000
    assert result["expected"]  # every item consumed exactly once
    assert sum(result["per_consumer"]) == 3000
    # The size is read under the queue's lock as an item is taken: never over the bound.
    assert 1 <= result["largest"] <= 50
    assert result["left"] == 0
    if how != "plain":
        # 300 producers against consumers that yield after each item: the
        # queue fills up and every consumer gets a share.
        assert result["largest"] == 50
        assert all(count > 0 for count in result["per_consumer"]), result


# -- 3. a shared counter -------------------------------------------------------------


def test_a_counter_is_exact_only_under_its_lock(how: str, tmp_path: Path) -> None:
    result = run_program(how, "counter.py", tmp_path=tmp_path)
    assert result["locked_0"] == 200
    assert result["locked_0.001"] == 200
    # Twenty threads read the counter before any writes it back: updates are lost.
    assert result["unlocked_0.001"] < 200, result
    if how != "plain":
        # time.sleep(0) switches tasks, so even it loses updates without the lock.
        assert result["unlocked_0"] < 200, result


# -- 4. re-acquiring a lock in a nested call -----------------------------------------


def test_nested_acquire_works_with_rlock(how: str, tmp_path: Path) -> None:
    result = run_program(how, "transfers.py", "RLock", tmp_path=tmp_path)
    assert result == {"a": 100, "b": 100}


def test_nested_acquire_with_lock_never_finishes_plain(tmp_path: Path) -> None:
    with pytest.raises(ProgramTimedOut):
        start_program("plain", "transfers.py", "Lock", tmp_path=tmp_path, timeout=2)


def test_nested_acquire_with_lock_is_reported_as_a_deadlock(patched: str, tmp_path: Path) -> None:
    # Every task waits for a lock and the main one for them: nothing can ever
    # wake anybody, and corun says so instead of hanging.
    start = time.perf_counter()
    proc = start_program(patched, "transfers.py", "Lock", tmp_path=tmp_path, timeout=15)
    assert time.perf_counter() - start < 10
    assert proc.returncode != 0, proc.stderr
    assert "LoopExit" in proc.stderr, proc.stderr
    assert proc.stdout == ""


# -- 5. Semaphore --------------------------------------------------------------------


def test_semaphore_admits_five_at_a_time(how: str, tmp_path: Path) -> None:
    result = run_program(how, "semaphore.py", tmp_path=tmp_path)
    assert result["peak"] == 5
    assert result["served"] == list(range(20))
    assert result["inside"] == 0
    # Four rounds of five, 0.2 s each: about 0.8 s; one at a time: 4 s.
    assert 0.75 <= result["elapsed"] < 2.5, result


# -- 6. Event.wait(timeout) ----------------------------------------------------------


def test_event_polling_with_wait_timeout(how: str, tmp_path: Path) -> None:
    result = run_program(how, "event_polling.py", tmp_path=tmp_path)
    assert result["unset"] is False
    assert result["unset_waited"] >= 0.09
    assert result["is_set"]
    # Ten pollers for 0.5 s with 0.05 s waits, all at once: about ten polls each.
    assert all(3 <= polls <= 11 for polls in result["polls"]), result
    assert all(lag < 0.5 for lag in result["lag"]), result
    woke, lag = result["long_wait"]
    assert woke is True
    assert lag < 1, result  # woken by set(), not by its 30 s timeout
    assert result["elapsed"] < 2.5, result


# -- 7. Condition.notify(n) ----------------------------------------------------------


def test_condition_notify_wakes_exactly_n(how: str, tmp_path: Path) -> None:
    result = run_program(how, "condition.py", tmp_path=tmp_path)
    assert result["all_waiting"]
    order = result["waiting"]
    assert sorted(order) == list(range(10))
    first, second, last = result["steps"]
    assert first == {"notified": 3, "woken": sorted(order[:3]), "extra": False}
    assert second == {"notified": 2, "woken": sorted(order[:5]), "extra": False}
    assert last == {"notified": "all", "woken": list(range(10)), "extra": False}


# -- 8. threading.Timer --------------------------------------------------------------


def test_timers_fire_and_cancel_prevents_them(how: str, tmp_path: Path) -> None:
    result = run_program(how, "timers.py", tmp_path=tmp_path)
    assert result["fired"] == [f"t{n}" for n in range(0, 20, 2)]
    assert result["earliest"] >= 0.29
    assert result["elapsed"] < 1.5, result  # ten timers of 0.3 s, all at once
    assert result["alive"] == 0


# -- 9. ThreadPoolExecutor -----------------------------------------------------------


def test_thread_pool_executor_map(how: str, tmp_path: Path) -> None:
    result = run_program(how, "executor_map.py", tmp_path=tmp_path)
    assert result["results"] == [n * n for n in range(20)]
    assert result["elapsed"] < 1.5, result  # 20 calls of 0.3 s: 6 s one after another
    assert result["workers"] >= 10, result
    assert result["worker_names_ok"]
    assert result["active_after"] == 1


# -- 10. logging -----------------------------------------------------------------------


def test_logging_from_many_threads(how: str, tmp_path: Path) -> None:
    result = run_program(how, "logging_threads.py", tmp_path=tmp_path)
    assert result["lines"] == 400
    assert result["bad"] == []
    assert result["whole"]
    assert result["per_thread_in_order"]


# -- 11. the rest of the threading API -------------------------------------------------


def test_barrier_local_names_enumerate_and_join_timeout(how: str, tmp_path: Path) -> None:
    result = run_program(how, "threads_api.py", tmp_path=tmp_path)

    assert result["barrier_events"] == ["arrive"] * 5 + ["leave"] * 5
    assert result["barrier_indices"] == [0, 1, 2, 3, 4]
    assert result["barrier_broken"] is False

    # Each thread starts with a fresh local (Tally.__init__ ran for it) and keeps its own values.
    assert result["local_seen"] == [{"fresh": [None, 0], "value": n, "count": n + 1} for n in range(5)]
    assert result["local_main"] == ["main", 100]

    assert result["main_name"] == "MainThread"
    assert result["main_is_main"]
    assert result["enumerate_running"] == ["MainThread", "alpha", "beta", "gamma"]
    assert result["active_running"] == 4
    assert all(info["is_self"] for info in result["inside"].values())
    assert sorted(result["inside"]) == ["alpha", "beta", "gamma"]
    assert result["idents_match"]
    assert result["idents_distinct"]

    assert 0.19 <= result["join_timeout_waited"] < 2
    assert result["alive_after_join_timeout"] is True
    assert result["alive_after_join"] == [False, False, False]
    assert result["enumerate_after"] == ["MainThread"]


def test_exit_waits_for_non_daemon_threads_only(how: str, tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = start_program(how, "exit_wait.py", tmp_path=tmp_path)
    elapsed = time.perf_counter() - start
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "main done\nnon-daemon thread done\n"
    assert 0.5 <= elapsed < 10  # the daemon thread would have kept it for 30 s
