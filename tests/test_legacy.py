"""Legacy programs give the same output and exit status under ``python -m corun`` as plainly.

Each program in ``tests/legacy/`` is ordinary stdlib code (threads, processes,
signals, pipes, sockets, servers, logging, sqlite, subprocesses, stdin) that
never mentions corun. It runs in a fresh interpreter plainly, then under
``python -m corun``; the two runs must print the same stdout and stderr and
end with the same exit status, in about the same time. Nothing is normalised:
the programs print only what is deterministic (sorted results, no timings, no
pids), and their tracebacks name the same files and lines both ways.

A program that mostly waits must sleep while it waits under corun, never spin:
its CPU time stays well below its wall time. And its threads are tasks: its
process has one OS thread under corun, unless the hub's thread pool works for
it (name resolution).

Programs that fail under corun today are strict xfails whose reason says how
they fail; the change that fixes one flips its test, and the marker goes.
"""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .legacy._corpus import PROGRAMS, Program, Run, program_files, run, time_allowed

# Waiting programs: a hub that polled in a loop while tasks wait would burn
# about one CPU second per wall second; these wait for most of their run, and
# the interpreter's own start (corun's imports included) costs 0.1-0.2 s.
WAIT_CPU_SHARE = 0.5


def _param(program: Program) -> Any:
    marks = [pytest.mark.timeout(2 * program.timeout + 30)]
    if program.known_failure:
        marks.append(pytest.mark.xfail(strict=True, reason=program.known_failure))
    return pytest.param(program, id=program.name.removesuffix(".py"), marks=marks)


def _show(how: str, result: Run) -> str:
    """A run's outcome, for an assertion message."""
    return (
        f"{how}: exit status {result.returncode}, {result.wall:.2f} s wall, {result.cpu:.2f} s CPU"
        f"{', timed out' if result.timed_out else ''}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def test_the_corpus_lists_every_program() -> None:
    assert sorted(p.name for p in PROGRAMS) == program_files()
    assert len(PROGRAMS) >= 25
    assert all(p.covers for p in PROGRAMS)  # each says what it covers


@pytest.mark.parametrize("program", [_param(p) for p in PROGRAMS])
def test_a_legacy_program_runs_the_same_under_corun(program: Program) -> None:
    # Both runs at once, to keep the corpus quick: each is measured on its own
    # process, and both wait on the same machine, so the times stay comparable.
    with ThreadPoolExecutor(max_workers=2) as pool:
        plain_run, corun_run = pool.submit(run, program, "plain"), pool.submit(run, program, "corun")
        plain, under = plain_run.result(), corun_run.result()
    # The program itself must work: it ends as intended and writes to stderr only on purpose.
    assert not plain.timed_out, _show("plain", plain)
    assert plain.returncode == program.status, _show("plain", plain)
    if not program.stderr:
        assert plain.stderr == "", _show("plain", plain)

    assert not under.timed_out, _show("corun", under)
    outcome = (under.stdout, under.stderr, under.returncode)
    assert outcome == (plain.stdout, plain.stderr, plain.returncode), (
        _show("plain", plain) + "\n" + _show("corun", under)
    )
    assert under.wall < time_allowed(program, plain), f"plain {plain.wall:.2f} s, corun {under.wall:.2f} s"
    if program.waits:
        assert under.cpu < WAIT_CPU_SHARE * under.wall, f"{under.cpu:.2f} s CPU in {under.wall:.2f} s"
    if program.corun_os_threads is not None:
        # A sample can miss a short-lived thread, never invent one: this bound cannot fail by chance.
        assert under.threads <= program.corun_os_threads, (
            f"{under.threads} OS threads, plainly {plain.threads}"
        )


def test_the_measures_see_a_spinning_program_and_its_threads(tmp_path: Path) -> None:
    # What the checks above rely on: the CPU time of a program that spins is
    # seen, and so are its threads.
    (tmp_path / "spin.py").write_text(
        textwrap.dedent(
            """
            import threading, time
            threads = [threading.Thread(target=time.sleep, args=(0.5,)) for _ in range(3)]
            for t in threads:
                t.start()
            while time.process_time() < 0.6:
                pass
            for t in threads:
                t.join()
            print("spun")
            """
        )
    )
    spin = run(Program("spin.py", directory=tmp_path), "plain")
    assert spin.stdout == "spun\n"
    assert spin.cpu >= 0.6, (spin.cpu, spin.wall)
    assert spin.threads == 4
