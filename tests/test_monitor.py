"""corun.monitor: the blocking monitor, the task dump, loop statistics and their Prometheus export."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import corun
from corun import monitor
from corun.hub import Hub, wait_readable
from corun.monitor import prometheus

from .conftest import ROOT, PipeLines

DETECTED = "has not run its loop"
ENDED = re.compile(r"was blocked for ([0-9.]+) s in all by (.*)")


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def line_of(path: Path, text: str) -> int:
    """The number of the line of ``path`` holding ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORUN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_corun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m corun args...`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "corun", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or child_env(),
    )


# Prints, as its last line, the reports its listener got and the hub's statistics.
REPORTS = """
import json, corun
from corun import monitor
reports = []
monitor.add_listener(reports.append)

def print_reports(expected, task=None):
    # A listener hears of an episode once the monitor sees it end, a tick after it did.
    # Counted for the task awaited: on a busy machine the OS may hold the whole process
    # earlier, which the monitor reports under whoever ran, before the awaited episode.
    deadline = time.monotonic() + 5
    while sum(task in (None, r.task) for r in reports) < expected and time.monotonic() < deadline:
        corun.sleep(0.01)
    stats = corun.stats()
    print(json.dumps({
        "reports": [vars(r) for r in reports],
        "lag_count": stats.loop_lag.count if stats.loop_lag else None,
    }))
"""


def test_the_monitor_names_the_task_and_the_line_of_a_call_that_blocks(tmp_path: Path) -> None:
    path = write(
        tmp_path / "blocks.py",
        "import time\n"
        + REPORTS
        + """
from corun import monkey
real_sleep = monkey.get_original("time", "sleep")

def work():
    time.sleep(0.1)  # patched: lets the loop run first
    real_sleep(0.3)

task = corun.spawn(work)
task.name = "sleeper"
task.join()
print_reports(1, "task 'sleeper'")
""",
    )
    proc = run_corun("--monitor=0.05", str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    # Only the sleeper's block: on a busy machine the OS may also hold the
    # whole process for longer than 0.05 s, which the monitor rightly reports.
    [report] = [r for r in out["reports"] if r["task"] == "task 'sleeper'"]
    assert 0.28 <= report["duration"] < 0.8, report
    call = line_of(path, "real_sleep(0.3)")
    assert f'"{path}", line {call}, in work\n    real_sleep(0.3)\n' in report["stack"]
    assert report["stack"].rstrip().endswith("real_sleep(0.3)")  # the innermost frame is the call
    assert abs(report["started"] - (time.time() - 1)) < 30
    # The logger: one warning when it is seen, with the stack, one when it ends.
    assert proc.stderr.count("task 'sleeper' is running") == 1, proc.stderr
    assert f"line {call}, in work" in proc.stderr
    [seconds] = [s for s, who in ENDED.findall(proc.stderr) if who == "task 'sleeper'"]
    assert 0.28 <= float(seconds) < 0.8


def test_a_spinning_task_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "spins.py",
        "import time\n"
        + REPORTS
        + """
def spin():
    corun.sleep(0.1)
    end = time.monotonic() + 0.4
    while time.monotonic() < end:
        pass

task = corun.spawn(spin)
task.name = "spinner"
task.join()
print_reports(1, "task 'spinner'")
""",
    )
    proc = run_corun("--monitor=0.05", str(path))
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(proc.stdout.splitlines()[-1])["reports"]
    [report] = [r for r in reports if r["task"] == "task 'spinner'"]
    assert 0.35 <= report["duration"] < 1.0, report
    # The line the loop was on when it was seen: its test or its body.
    innermost = report["stack"].rstrip().splitlines()[-2]
    assert innermost.strip().startswith(f'File "{path}", line'), report["stack"]
    assert int(innermost.split("line ")[1].split(",")[0]) in {
        line_of(path, "while time.monotonic() < end"),
        line_of(path, "pass"),
    }


def test_a_program_that_never_blocks_gets_no_report(tmp_path: Path) -> None:
    path = write(
        tmp_path / "busy.py",
        "import time\n"
        + REPORTS
        + """
import socket, threading

def ticker(n):
    for _ in range(40):
        time.sleep(0.01 * n)

def echo(conn):
    while data := conn.recv(100):
        conn.sendall(data)

a, b = socket.socketpair()
threading.Thread(target=echo, args=(b,)).start()
tasks = [corun.spawn(ticker, n % 3 + 1) for n in range(20)]
for i in range(200):
    a.sendall(b"x" * 50)
    a.recv(100)
    time.sleep(0.002)
corun.joinall(tasks)
a.close()
print_reports(0)
""",
    )
    # A threshold far above any wait of the program's, and above what a busy
    # machine's scheduler may hold a process for.
    proc = run_corun("--monitor=0.3", str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["reports"] == [] and DETECTED not in proc.stderr, proc.stderr
    assert out["lag_count"] > 5  # the monitor was on, probing all along


def test_the_environment_turns_the_monitor_on_in_a_patch_all_program() -> None:
    source = """
        from corun import monkey
        monkey.patch_all()
        import time, corun

        def work():
            time.sleep(0.1)
            monkey.get_original("time", "sleep")(0.3)

        task = corun.spawn(work)
        task.name = "env-sleeper"
        task.join()
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(CORUN_MONITOR="0.05"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("task 'env-sleeper' is running") == 1, proc.stderr
    # Off without it.
    quiet = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True, env=child_env()
    )
    assert quiet.returncode == 0 and DETECTED not in quiet.stderr, quiet.stderr


def test_bad_monitor_and_dump_options_are_usage_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "nothing.py", "print('ran')\n")
    for args in (["--monitor=soon"], ["--monitor=0"], ["--dump-on", "SIGNOPE"], ["--dump-on"]):
        proc = run_corun(*args, str(path))
        assert proc.returncode == 2 and "ran" not in proc.stdout, (args, proc.stderr)
        assert "Try 'python -m corun --help'" in proc.stderr
    assert run_corun("--monitor", "--dump-on=USR1", str(path)).stdout == "ran\n"


# -- the dump ------------------------------------------------------------------------


def test_dump_on_a_signal_prints_every_task_while_the_main_task_blocks_in_c(tmp_path: Path) -> None:
    path = write(
        tmp_path / "stuck.py",
        """
import sys, time, corun
from corun import monkey

def wait_for_event(event):
    event.wait()

def nap():
    time.sleep(60)

event = corun.Event()
waiter = corun.spawn(wait_for_event, event)
waiter.name = "event-waiter"
napper = corun.spawn(nap)
napper.name = "napper"
time.sleep(0.2)
print("ready", flush=True)
monkey.get_original("os", "read")(0, 1)  # blocks in C until the test writes
print("released", flush=True)
napper.kill()
event.set()
waiter.join()
""",
    )
    with subprocess.Popen(
        [sys.executable, "-m", "corun", "--dump-on", "SIGUSR1", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        out, err = PipeLines(proc.stdout), PipeLines(proc.stderr)
        assert out.readline(timeout=30) == "ready"
        # The main task may not be in its read yet: ask again until a dump shows it there.
        for _ in range(50):
            proc.send_signal(signal.SIGUSR1)
            lines = [err.wait_for("corun: the hub of the main thread", timeout=10)]
            # Until each task's innermost line: the tasks come in no set order.
            ends = ("time.sleep(60)", "event.wait()")
            while not all(any(line.endswith(end) for line in lines) for end in ends):
                lines.append(err.readline(timeout=10))
            if any("(0, 1)  # blocks in C" in line for line in lines):
                break
        assert proc.poll() is None  # still blocked: the dump came from another thread
        proc.stdin.write(b"x")
        proc.stdin.flush()
        assert out.readline(timeout=10) == "released"
        assert proc.wait(timeout=30) == 0
    dump = "\n".join(lines)
    assert "2 live tasks" in dump, dump
    assert "the main task: running" in dump
    read_line = line_of(path, 'monkey.get_original("os", "read")(0, 1)')
    assert f'"{path}", line {read_line}, in <module>' in dump
    assert re.search(r"task 'event-waiter': waiting on <Event unset .*> for [0-9.]+ s", dump), dump
    assert f"line {line_of(path, 'event.wait()')}, in wait_for_event" in dump
    assert re.search(r"task 'napper': waiting on sleep for [0-9.]+ s", dump), dump
    assert f"line {line_of(path, 'time.sleep(60)')}, in nap" in dump
    assert "runner.py" not in dump and "_waiter.py" not in dump  # neither what started them nor how they park


def test_dump_prints_every_task_with_its_state_and_stack(hub: Hub) -> None:
    event = corun.Event()
    a, b = socket.socketpair()
    fd = a.fileno()

    def reader() -> None:
        wait_readable(a.fileno())

    tasks = [corun.spawn(event.wait), corun.spawn(corun.sleep, 30), corun.spawn(reader)]
    for task, name in zip(tasks, ["on-event", "sleeping", "reading"], strict=True):
        task.name = name
    later = corun.spawn_later(30, print)
    later.name = "later"
    corun.sleep(0.01)
    out = io.StringIO()
    try:
        corun.dump(out)
    finally:
        corun.killall([*tasks, later])
        a.close()
        b.close()
    text = out.getvalue()
    assert "4 live tasks, 1 fd wait, 2 timers" in text, text
    assert "the main task: running" in text
    assert "in test_dump_prints_every_task_with_its_state_and_stack\n    corun.dump(out)" in text
    assert re.search(rf"task 'on-event': waiting on <Event unset .*at {id(event):#x}>\n", text), text
    assert "task 'sleeping': waiting on sleep" in text
    assert f"task 'reading': waiting on ('fd', {fd}, 'readable')" in text
    assert "in reader\n    wait_readable(a.fileno())" in text
    assert "task 'later': not started yet" in text


# -- statistics ----------------------------------------------------------------------


def test_statistics_count_what_the_program_did(hub: Hub) -> None:
    before = corun.stats()
    assert before.live_tasks == 0 and before.loop_lag is None and before.task_run_time is None
    sleepers = [corun.spawn(corun.sleep, 30) for _ in range(5)]
    a, b = socket.socketpair()
    reader = corun.spawn(wait_readable, a.fileno())
    corun.sleep(0)
    during = corun.stats()
    assert during.live_tasks == 6
    assert during.timers == 5
    assert during.io_waits == 1 and during.fds == 1
    for _ in range(100):
        corun.sleep(0)
    after_yields = corun.stats()
    assert after_yields.passes >= during.passes + 100
    assert after_yields.callbacks_run >= during.callbacks_run + 100
    corun.killall([*sleepers, reader])
    b.close()
    a.close()
    done = corun.stats()
    assert done.live_tasks == 0 and done.timers == 0 and done.io_waits == 0
    # A task killed before it ever ran still counts out.
    never = corun.spawn(print)
    assert corun.stats().live_tasks == 1
    never.kill()
    assert corun.stats().live_tasks == 0


def test_a_monitor_adds_loop_lag_and_task_run_time(hub: Hub) -> None:
    watching = monitor.start(0.1)
    reports: list[monitor.BlockingReport] = []
    monitor.add_listener(reports.append)

    def busy() -> None:
        while True:
            end = time.monotonic() + 0.005
            while time.monotonic() < end:
                pass
            corun.sleep(0)

    def block() -> None:
        corun.sleep(0.05)
        time.sleep(0.4)  # this process is not patched: the real sleep

    try:
        worker = corun.spawn(busy)
        worker.name = "busy-worker"
        blocker = corun.spawn(block)
        blocker.name = "blocker"
        corun.sleep(1.0)
        deadline = time.monotonic() + 5
        while not reports and time.monotonic() < deadline:
            corun.sleep(0.01)
        stats = corun.stats()
        worker.kill()
    finally:
        monitor.remove_listener(reports.append)
    assert [r.task for r in reports].count("task 'blocker'") == 1, reports
    assert stats.loop_lag is not None and stats.task_run_time is not None
    assert stats.loop_lag.count > 10
    assert stats.loop_lag.p50 <= stats.loop_lag.p99 <= stats.loop_lag.max
    # The probe that waited out the block; the upper bound only says it is that block's, with room
    # for a busy machine.
    assert 0.39 <= stats.loop_lag.max < 3.0
    run_time = dict(stats.task_run_time)
    assert run_time.get("busy-worker", 0) > 0.2, stats.task_run_time
    assert "blocker" not in run_time  # finished tasks are not listed
    # A busy machine may also stall the busy worker's spin past the threshold: each report is counted.
    assert watching.blocked.count == len(reports) >= 1


def test_a_failing_listener_is_logged_not_raised(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    def broken(report: monitor.BlockingReport) -> None:
        raise RuntimeError("listener bug")

    monitor.start(0.05)
    monitor.add_listener(broken)
    try:
        corun.spawn(lambda: (corun.sleep(0.02), time.sleep(0.15))).join()
        deadline = time.monotonic() + 5
        while "listener bug" not in caplog.text and time.monotonic() < deadline:
            corun.sleep(0.01)
    finally:
        monitor.remove_listener(broken)
    assert "monitor listener" in caplog.text and "listener bug" in caplog.text
    assert all(r.name == "corun.monitor" and r.levelname == "WARNING" for r in caplog.records)


def test_the_monitor_thread_ends_with_its_hub(hub: Hub) -> None:
    watching = monitor.start(0.02)
    deadline = time.monotonic() + 5
    while watching.ident not in sys._current_frames() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watching.ident in sys._current_frames()
    hub.destroy()
    deadline = time.monotonic() + 5
    while watching.ident in sys._current_frames() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watching.ident not in sys._current_frames() and not watching.running


def test_threshold_must_be_positive(hub: Hub) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            monitor.start(bad)


def test_prometheus_exports_the_statistics_and_blocked_time(hub: Hub) -> None:
    registry = CollectorRegistry()
    prometheus.register(registry)
    watching = monitor.start(0.05)
    corun.spawn(lambda: (corun.sleep(0.02), time.sleep(0.2))).join()
    deadline = time.monotonic() + 5
    while not watching.blocked.count and time.monotonic() < deadline:
        corun.sleep(0.01)
    sleepers = [corun.spawn(corun.sleep, 30) for _ in range(3)]
    corun.sleep(0)
    try:
        text = generate_latest(registry).decode()
    finally:
        corun.killall(sleepers)
    label = f'thread="{hub.thread_ident}"'
    assert f"corun_live_tasks{{{label}}} 3.0" in text
    assert f"corun_timers{{{label}}} 3.0" in text
    passes = float(re.search(rf"corun_loop_passes_total{{{label}}} ([0-9.e+]+)", text)[1])  # type: ignore[index]
    assert passes >= hub.counts.passes - 5 > 0
    assert f"corun_blocked_seconds_count{{{label}}} 1.0" in text
    assert re.search(rf'corun_blocked_seconds_bucket{{le="0\.262144",{label}}} 1\.0', text), text
    assert re.search(rf'corun_blocked_seconds_bucket{{le="0\.131072",{label}}} 0\.0', text), text
    assert re.search(rf"corun_loop_lag_seconds_count{{{label}}} [1-9]", text)
