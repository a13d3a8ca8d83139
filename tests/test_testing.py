"""corun.testing: the virtual clock, the pytest plugin and the helpers it offers to tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import corun
import corun.hub
from corun import _originals
from corun.hub import Hub, LoopExit
from corun.testing import ManualClock, VirtualClock, count_passes, run_in_thread, run_patched, run_process

from .conftest import ROOT, expects_loop_exit, run_json

pytest_plugins = ["pytester"]


@pytest.fixture
def virtual(hub: Hub) -> Iterator[VirtualClock]:
    """A hub on a virtual clock, installed as this thread's hub for one test."""
    clock = VirtualClock()
    h = Hub(clock=clock)
    corun.hub._set_thread_hub(h)
    yield clock
    h.destroy()


def real_seconds(func: Callable[[], Any]) -> float:
    """How long ``func()`` took on the real clock."""
    start = _originals.monotonic()
    func()
    return _originals.monotonic() - start


# -- the clock ------------------------------------------------------------------


def test_sixty_tasks_sleeping_an_hour_take_an_hour_of_virtual_time_and_no_real_time(
    virtual: VirtualClock,
) -> None:
    woke: list[float] = []

    def sleeper(n: int) -> None:
        corun.sleep(3600 + n)
        woke.append(virtual.elapsed)

    real = real_seconds(lambda: corun.joinall([corun.spawn(sleeper, n) for n in range(60)]))
    assert real < 1.0
    assert woke == [pytest.approx(3600 + n) for n in range(60)]
    assert virtual.elapsed == pytest.approx(3659)


def _wait_under_timeout() -> None:
    with corun.Timeout(30):
        corun.Event().wait()


def _timed_waits() -> dict[str, Callable[[], object]]:
    lock = corun.Lock()
    semaphore = corun.Semaphore(0)
    pool = corun.Pool(1)
    return {
        "sleep": lambda: corun.sleep(30),
        "Timeout": _wait_under_timeout,
        "with_timeout": lambda: corun.with_timeout(30, corun.Event().wait, timeout_value=None),
        "Event.wait": lambda: corun.Event().wait(30),
        "AsyncResult.get": lambda: corun.AsyncResult().get(timeout=30),
        "Lock.acquire": lambda: lock.acquire() and lock.acquire(timeout=30),
        "Semaphore.acquire": lambda: semaphore.acquire(timeout=30),
        "Queue.get": lambda: corun.Queue().get(timeout=30),
        "Greenlet.join": lambda: corun.spawn(corun.sleep, 99).join(30),
        "joinall": lambda: corun.joinall([corun.spawn(corun.sleep, 99)], timeout=30),
        "Pool.join": lambda: (pool.spawn(corun.sleep, 99), pool.join(timeout=30)),
        "wait_readable": lambda: corun.hub.wait_readable(_originals.os_pipe()[0], timeout=30),
    }


@pytest.mark.parametrize("kind", sorted(_timed_waits()))
def test_every_timed_wait_follows_the_virtual_clock(virtual: VirtualClock, kind: str) -> None:
    wait = _timed_waits()[kind]

    def run() -> None:
        try:
            wait()
        except (corun.Timeout, TimeoutError, Exception) as exc:  # each kind says "timed out" its own way
            if type(exc).__name__ not in ("Timeout", "TimeoutError", "Empty"):
                raise

    real = real_seconds(lambda: corun.spawn(run).get())
    assert virtual.elapsed == pytest.approx(30)
    assert real < 1.0


def test_time_stands_still_while_a_task_runs(virtual: VirtualClock) -> None:
    seen = []

    def busy() -> None:
        before = virtual.now()
        end = _originals.monotonic() + 0.05
        while _originals.monotonic() < end:
            pass
        corun.sleep(0)
        seen.append(virtual.now() - before)

    corun.spawn(busy).join()
    assert seen == [0.0]


def test_advance_moves_the_clock_by_hand_and_due_timers_fire_on_the_next_pass(virtual: VirtualClock) -> None:
    woke: list[float] = []
    # With a threshold this long, only advance() can make the sleeper due in time.
    virtual.autojump_threshold = 30
    task = corun.spawn(lambda: (corun.sleep(10), woke.append(virtual.elapsed)))
    corun.sleep(0)
    virtual.advance(4)
    corun.sleep(0)
    assert woke == []
    virtual.advance(6)
    corun.sleep(0)
    corun.sleep(0)
    assert woke == [pytest.approx(10)]
    task.join()
    with pytest.raises(ValueError, match="only goes forward"):
        virtual.advance(-1)


def test_a_real_socket_timeout_on_a_silent_peer_takes_no_real_time(virtual: VirtualClock) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    try:
        with pytest.raises(TimeoutError):
            started = _originals.monotonic()
            corun.spawn(corun.hub.wait_readable, client.fileno(), 30).get()
        assert _originals.monotonic() - started < 10  # a real wait would take 30 s
        assert virtual.elapsed == pytest.approx(30)
    finally:
        for s in (client, peer, listener):
            corun.hub.notify_closing(s.fileno())
            s.close()


ANSWER_LATE = "import time, sys; time.sleep(0.2); sys.stdout.write('answer'); sys.stdout.flush()"


@pytest.mark.parametrize(("threshold", "answered"), [(0.5, True), (0.0, False)])
def test_autojump_threshold_gives_a_real_peer_time_to_answer(
    virtual: VirtualClock, threshold: float, answered: bool
) -> None:
    virtual.autojump_threshold = threshold
    child = subprocess.Popen([sys.executable, "-c", ANSWER_LATE], stdout=subprocess.PIPE)
    assert child.stdout is not None
    fd = child.stdout.fileno()
    try:

        def wait() -> bool:
            try:
                corun.hub.wait_readable(fd, timeout=10)
            except TimeoutError:
                return False
            return True

        got = corun.spawn(wait).get()
        assert got is answered
        # Waiting for real I/O does not move virtual time; giving up jumps it to the deadline.
        assert virtual.elapsed == (0.0 if answered else pytest.approx(10))
    finally:
        corun.hub.notify_closing(fd)
        child.kill()
        child.wait()
        child.stdout.close()


def test_the_clock_waits_for_work_in_other_threads_instead_of_jumping_past_it(virtual: VirtualClock) -> None:
    pool = corun.get_hub().threadpool
    # A job of 0.2 s in the thread pool under a Timeout of 5 s: the result comes, time stood still.
    with corun.Timeout(5):
        assert pool.spawn(lambda: (_originals.real_sleep(0.2), "done")[1]).get() == "done"
    assert virtual.elapsed == 0.0
    # A deadline that comes first still passes, in real time while the job runs.
    started = _originals.monotonic()
    with pytest.raises(corun.Timeout):
        with corun.Timeout(0.1):
            pool.spawn(_originals.real_sleep, 2.0).get()
    assert virtual.elapsed == pytest.approx(0.1)
    assert 0.05 < _originals.monotonic() - started < 1.5  # not the job's 2 s
    pool.join()


@expects_loop_exit
def test_a_wait_nothing_can_end_is_still_reported(virtual: VirtualClock) -> None:
    with pytest.raises(LoopExit, match="would block forever"):
        corun.Event().wait()
    assert virtual.elapsed == 0.0


def test_the_threshold_must_be_a_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="autojump_threshold"):
        VirtualClock(autojump_threshold=-1)


# -- under patch_all -----------------------------------------------------------------

PATCHED_WAITS = """
from corun import monkey; monkey.patch_all()
import json, queue, select, socket, threading, time
import corun, corun.hub
from corun import _originals
from corun.testing import ManualClock, VirtualClock, count_passes, run_in_thread, run_patched, run_process

clock = VirtualClock()
corun.hub._set_thread_hub(corun.hub.Hub(clock=clock))
real_start = _originals.monotonic()
wall_start, mono_start, perf_start = time.time(), time.monotonic(), time.perf_counter()
seen = {}

def mark(name):
    seen[name] = round(time.monotonic() - mono_start, 6)

time.sleep(100); mark("time.sleep")
timer = threading.Timer(50, mark, ["threading.Timer"]); timer.start(); timer.join()
cond = threading.Condition()
with cond:
    cond.wait(7); mark("Condition.wait")
try:
    queue.Queue().get(timeout=11)
except queue.Empty:
    mark("queue.Queue.get")
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname(), timeout=30)
try:
    client.recv(1)
except TimeoutError:
    mark("socket timeout")
select.select([client], [], [], 13); mark("select")
threading.Thread(target=time.sleep, args=(5,)).start()
threading.Event().wait(2); mark("Event.wait")
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
try:
    child.wait(timeout=10)
except subprocess.TimeoutExpired:
    mark("Popen.wait")
child.kill(); child.wait()
seen["time.time"] = round(time.time() - wall_start, 6)
seen["perf_counter"] = round(time.perf_counter() - perf_start, 6)
seen["monotonic_ns"] = round(time.monotonic_ns() / 1e9 - mono_start, 3)
seen["real"] = _originals.monotonic() - real_start
print(json.dumps(seen))
"""


def test_under_patch_all_every_stdlib_wait_and_clock_follows_the_virtual_clock() -> None:
    seen = run_json(PATCHED_WAITS)
    assert seen.pop("real") < 1.0
    assert seen == {
        "time.sleep": 100,
        "threading.Timer": 150,
        "Condition.wait": 157,
        "queue.Queue.get": 168,
        "socket timeout": 198,
        "select": 211,
        "Event.wait": 213,
        "Popen.wait": 223,
        "time.time": 223,
        "perf_counter": 223,
        "monotonic_ns": 223,
    }


def test_under_patch_all_without_a_virtual_clock_the_clocks_are_real() -> None:
    seen = run_json(
        """
        from corun import monkey; monkey.patch_all()
        import json, time
        from corun import _originals
        pairs = [
            (time.monotonic(), _originals.monotonic()),
            (time.time(), _originals.wall_time()),
            (time.perf_counter(), _originals.perf_counter()),
            (time.monotonic_ns() / 1e9, _originals.monotonic()),
        ]
        print(json.dumps([abs(a - b) for a, b in pairs]))
        """
    )
    assert all(gap < 0.5 for gap in seen), seen
    assert time.monotonic is _originals.monotonic  # this process was never patched


# -- the pytest plugin --------------------------------------------------------------


def test_the_virtual_clock_fixture_runs_the_test_in_a_task_on_a_virtual_hub(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import corun
        from corun import _originals
        from corun.greenlet import Greenlet

        def test_an_hour_in_sixty_tasks(virtual_clock):
            assert isinstance(corun.getcurrent(), Greenlet)
            assert corun.get_hub().clock is virtual_clock
            start = _originals.monotonic()
            corun.joinall([corun.spawn(corun.sleep, 3600) for _ in range(60)])
            assert virtual_clock.elapsed == 3600
            assert _originals.monotonic() - start < 5.0

        def test_left_alone():
            assert corun.get_hub().clock is _originals.monotonic
            assert not isinstance(corun.getcurrent(), Greenlet)
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=2)


def test_the_marker_puts_a_whole_module_on_the_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest, corun
        from corun.testing import VirtualClock

        pytestmark = pytest.mark.corun(clock="virtual")

        def test_timeout():
            clock = corun.get_hub().clock
            assert isinstance(clock, VirtualClock)
            with pytest.raises(corun.Timeout):
                with corun.Timeout(30):
                    corun.Event().wait()
            assert clock.elapsed == 30

        class TestInAClass:
            @pytest.mark.corun(autojump_threshold=0.25)
            def test_threshold_from_the_closest_marker(self):
                assert corun.get_hub().clock.autojump_threshold == 0.25
        """,
        test_unmarked="""
        import corun
        from corun import _originals

        def test_real_clock():
            assert corun.get_hub().clock is _originals.monotonic
        """,
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


@expects_loop_exit
def test_the_marker_wins_over_an_autouse_fixture_that_makes_a_hub_and_loop_exit_reaches_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest
        from corun.hub import _peek_hub, get_hub

        @pytest.fixture(autouse=True)
        def hub():
            old = _peek_hub()
            if old is not None:
                old.destroy()
            yield get_hub()
        """
    )
    pytester.makepyfile(
        """
        import pytest, corun
        from corun.testing import VirtualClock

        @pytest.mark.corun(clock="virtual")
        def test_marked():
            corun.sleep(60)
            assert corun.get_hub().clock.elapsed == 60

        def test_nothing_can_wake_the_test(virtual_clock):
            with pytest.raises(corun.LoopExit, match="would block forever"):
                corun.Event().wait()
            corun.sleep(1)
            assert virtual_clock.elapsed == 1
        """
    )
    result = pytester.runpytest("-p", "no:timeout")
    result.assert_outcomes(passed=2)


def test_a_bad_marker_keyword_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.corun(clock="sundial")
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*corun(clock=...) is 'real' or 'virtual', not 'sundial'*"])
    assert result.ret != 0


def test_a_test_that_leaves_work_on_its_hub_fails_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        import corun
        import pytest

        def test_leaves_a_task(corun_hub):
            corun.spawn(corun.sleep, 60).name = "sleepy"
            corun.sleep(0)

        def test_leaves_a_timer(corun_hub):
            corun_hub.call_later(60, print, "late")

        def test_leaves_an_fd(corun_hub):
            a, b = socket.socketpair()
            pytest.leaked = (a, b)  # kept open, as a leak keeps them
            with pytest.raises(TimeoutError):
                corun.hub.wait_readable(a.fileno(), timeout=0.01)

        def test_clean(corun_hub):
            corun.spawn(corun.sleep, 0.01).join()

        @pytest.mark.corun(check_leaks=False)
        def test_not_checked():
            corun.spawn(corun.sleep, 60)
        """
    )
    try:
        result = pytester.runpytest()
    finally:
        # The inner run shares this process: the pair it kept open would
        # otherwise stay open until this worker exits.
        for sock in vars(pytest).pop("leaked", ()):
            sock.close()
    # A leak fails the teardown, after a passing call.
    result.assert_outcomes(passed=5, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_a_task*",
            "*the test left work on its corun hub:",
            "*task 'sleepy' is still alive, waiting on sleep*",
            "*ERROR at teardown of test_leaves_a_timer*",
            "*a timer due in * s would call <built-in function print>('late',)*",
            "*ERROR at teardown of test_leaves_an_fd*",
            "*fd * is still registered with the hub (left open, or closed without notify_closing)*",
        ]
    )


BLOCKING_TESTS = """
import pytest
import corun
from corun import _originals

def blocker():
    _originals.real_sleep(0.3)  # the blocking line

def test_blocks():
    task = corun.spawn(blocker)
    task.name = "blocker"
    task.join()

def test_yields():
    corun.joinall([corun.spawn(corun.sleep, 0.05) for _ in range(10)])

@pytest.mark.corun(fail_on_block=0.1)
def test_marked_blocks(corun_hub):
    corun.spawn(blocker).join()
"""


def test_fail_on_block_names_the_task_and_the_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BLOCKING_TESTS)
    result = pytester.runpytest("--corun-fail-on-block=0.1")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_blocks _*",
            "*the corun hub was blocked for 0.* s (more than 0.1 s) by task 'blocker'*",
            "*in blocker*",
            "*_originals.real_sleep(0.3)  # the blocking line*",
        ]
    )
    # Without the option only the marked test is watched.
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*_ test_marked_blocks _*", "*blocked for * by task 'Greenlet-*"])


PATCHED_CONFTEST = """
from corun import monkey
monkey.patch_all()
"""

PATCHED_PLUGIN_TESTS = """
import queue, select, socket, subprocess, sys, threading, time
import pytest
from corun import _originals

@pytest.fixture
def real_time():
    start = _originals.monotonic()
    yield
    assert _originals.monotonic() - start < 5.0

def test_time_sleep_and_clocks(virtual_clock, real_time):
    wall, mono, perf = time.time(), time.monotonic(), time.perf_counter()
    threads = [threading.Thread(target=time.sleep, args=(3600,)) for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - mono == pytest.approx(3600)
    assert time.time() - wall == pytest.approx(3600)
    assert time.perf_counter() - perf == pytest.approx(3600)

def test_timer_condition_and_queue(virtual_clock, real_time):
    fired = []
    timer = threading.Timer(50, lambda: fired.append(virtual_clock.elapsed))
    timer.start()
    timer.join()
    assert fired == [50]
    cond = threading.Condition()
    with cond:
        assert cond.wait(7) is False
    with pytest.raises(queue.Empty):
        queue.Queue().get(timeout=11)
    assert virtual_clock.elapsed == 68

def test_socket_timeout_on_a_silent_local_peer(virtual_clock, real_time):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname(), timeout=30) as client:
            with pytest.raises(TimeoutError):
                client.recv(1)
            assert virtual_clock.elapsed == pytest.approx(30)
            assert select.select([client], [], [], 13) == ([], [], [])
            assert virtual_clock.elapsed == pytest.approx(43)

ANSWER = "import time, sys; time.sleep(0.2); sys.stdout.write('answer'); sys.stdout.flush()"

@pytest.mark.corun(clock="virtual", autojump_threshold=0.5)
def test_a_real_peer_answers_within_the_threshold(virtual_clock):
    child = subprocess.Popen([sys.executable, "-c", ANSWER], stdout=subprocess.PIPE)
    with child:
        ready, _, _ = select.select([child.stdout], [], [], 10)
        assert ready == [child.stdout]
        assert child.stdout.read() == b"answer"
    assert virtual_clock.elapsed < 10
"""


def test_under_patch_all_the_plugin_runs_stdlib_waits_in_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PATCHED_CONFTEST)
    pytester.makepyfile(PATCHED_PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::RuntimeWarning")
    result.assert_outcomes(passed=4)


# -- the toolbox ---------------------------------------------------------------------


def test_a_manual_clock_moves_only_when_moved() -> None:
    clock = ManualClock(5.0)
    assert clock() == 5.0
    clock.advance(2)
    clock.now += 1
    assert clock() == 8.0


def test_run_in_thread_runs_on_another_os_thread_and_returns_what_it_raised() -> None:
    idents: list[int] = []
    assert run_in_thread(lambda: idents.append(_originals.get_ident())) is None
    assert idents and idents[0] != _originals.get_ident()
    error = run_in_thread(lambda: corun.spawn(divmod, 1, 0).get())
    assert isinstance(error, ZeroDivisionError)
    with pytest.raises(TimeoutError, match="still ran on its thread"):
        run_in_thread(lambda: _originals.real_sleep(0.5), timeout=0.05)


def test_count_passes_counts_loop_passes(hub: Hub) -> None:
    passes = count_passes(hub)
    for _ in range(3):
        corun.sleep(0.001)  # each a poll of its own
    assert passes[0] >= 3


def test_run_patched_runs_a_snippet_patched_and_run_in_thread_still_gets_a_real_thread() -> None:
    proc = run_patched(
        """
        import threading
        from corun import monkey, _originals
        from corun.testing import run_in_thread
        idents = []
        threading.Thread(target=lambda: idents.append(_originals.get_ident())).start()
        run_in_thread(lambda: idents.append(_originals.get_ident()))
        main = _originals.get_ident()
        print(monkey.is_module_patched("socket"), idents[0] == main, idents[1] != main)
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True"]


# -- the README's example --------------------------------------------------------------


def readme_example() -> str:
    """The test file shown under "Testing code that uses corun" in the README."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Testing code that uses corun", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert code.startswith("# test_heartbeat.py\n")
    return code


def test_the_readme_example_runs_as_it_says(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_heartbeat=readme_example())
    started = _originals.monotonic()
    result = pytester.runpytest("--strict-markers")
    # An hour and a half-minute of virtual waits; the bound leaves room for a busy machine.
    assert _originals.monotonic() - started < 30
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_leaked_task_fails_the_test*",
            "*the test left work on its corun hub:",
            "*task 'Greenlet-*' is still alive, waiting on sleep*",
        ]
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of a process that ended is reaped by init; until then it is a zombie.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_run_process_kills_what_the_child_left_behind_and_a_timeout_keeps_its_output() -> None:
    # The sleeper does not hold the pipes, so the child's end is what ends run_process.
    leave_a_sleeper = (
        "import subprocess as s; print(s.Popen(['sleep', '60'], stdout=s.DEVNULL, stderr=s.DEVNULL).pid)"
    )
    proc = run_process([sys.executable, "-c", leave_a_sleeper], timeout=30)
    assert proc.returncode == 0, proc.stderr
    sleeper = int(proc.stdout)
    deadline = time.monotonic() + 10
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper), "the grandchild outlived run_process"

    with pytest.raises(subprocess.TimeoutExpired) as caught:
        stalls = "print('started', flush=True); import time; time.sleep(60)"
        run_process([sys.executable, "-c", stalls], timeout=2)
    assert caught.value.stdout == "started\n"
