"""The cooperative ``signal`` and ``corun.signal_handler``: handlers run promptly, safely, truthfully.

Every program runs in a fresh interpreter (signal handlers are process-wide),
patched either with the areas it needs or with ``patch_all()``.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from ..conftest import run_json, run_patched, ticker

ALONE = "from corun import monkey\nfor _m in ('signal', 'os', 'time'): monkey.patch_module(_m)\n"
ALL = "from corun import monkey; monkey.patch_all()\n"
NONE = "from corun import monkey\n"

both = pytest.mark.parametrize("prologue", [ALONE, ALL], ids=["signal-os-time", "patch_all"])

# A task that counts every 20 ms, to see that other tasks keep running.
TICKER = ticker(0.02)

# Sends a signal to this process from another process after a delay.
SEND_LATER = """
import os, subprocess
def send_later(signame, delay):
    return subprocess.Popen(["sh", "-c", f"sleep {delay}; kill -{signame} {os.getpid()}"])
"""


def run(prologue: str, body: str, *, timeout: float = 30) -> Any:
    """Run ``body`` after ``prologue``; return the JSON it printed on its last line."""
    return run_json(prologue + TICKER + SEND_LATER + textwrap.dedent(body), timeout=timeout)


@both
@pytest.mark.parametrize("sender", ["os.kill from a task", "another process"])
def test_sigint_raises_keyboard_interrupt_in_the_main_task(prologue: str, sender: str) -> None:
    out = run(
        prologue,
        f"""
        import json, os, signal, time
        finished = []
        def sleeper(i):
            try:
                time.sleep(10)
            finally:
                finished.append(i)
        sleepers = [corun.spawn(sleeper, i) for i in range(5)]
        if {sender!r} == "another process":
            send_later("INT", 0.2)
        else:
            corun.spawn_later(0.2, os.kill, os.getpid(), signal.SIGINT)
        t0 = time.perf_counter()
        try:
            corun.joinall(sleepers)
            where = "not interrupted"
        except KeyboardInterrupt:
            where = "main task"
        elapsed = time.perf_counter() - t0
        print(json.dumps({{"where": where, "elapsed": elapsed, "finished": finished,
                          "alive": sum(not s.dead for s in sleepers)}}))
        """,
    )
    assert out["where"] == "main task"
    assert out["elapsed"] < 5  # sent after 0.2 s: it cut the 10 s sleeps short
    assert out["finished"] == [] and out["alive"] == 5  # the sleepers were not the ones interrupted


@both
def test_a_handler_runs_promptly_while_the_hub_sits_in_epoll(prologue: str) -> None:
    # The only timer is 20 s away, so the hub polls with a 20 s timeout; the
    # handler wakes the main task through an Event at once nonetheless.
    out = run(
        prologue,
        """
        import json, signal, time
        ticker.kill()
        event = corun.Event()
        got = []
        def handler(signum, frame):
            got.append(signum)
            event.set()
        previous = signal.signal(signal.SIGUSR1, handler)
        keeper = corun.spawn_later(20, lambda: None)
        send_later("USR1", 0.2)
        t0 = time.perf_counter()
        event.wait()
        elapsed = time.perf_counter() - t0
        keeper.kill()
        print(json.dumps({"got": got, "elapsed": elapsed, "previous": str(previous),
                          "current": signal.getsignal(signal.SIGUSR1) is handler}))
        """,
    )
    assert out["got"] == [10]
    assert 0.1 < out["elapsed"] < 5  # sent after 0.2 s, not noticed when the timer wakes the hub
    assert out["previous"] in {"Handlers.SIG_DFL", "0"}
    assert out["current"] is True


@both
def test_sigusr1_and_sigchld_handlers_run(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, signal, subprocess, time
        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append("usr1"))
        signal.signal(signal.SIGCHLD, lambda signum, frame: got.append("chld"))
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)
        # A child awaited by a specific pid (pidfd), then one by "any child":
        # corun listens for SIGCHLD then, and the program's handler still runs.
        subprocess.run(["true"])
        time.sleep(0.05)
        n_specific = got.count("chld")
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 0.2"], os.environ)
        before = ticks[0]
        os.wait()
        during = ticks[0] - before
        time.sleep(0.05)
        print(json.dumps({"usr1": got.count("usr1"), "chld_specific": n_specific,
                          "chld_total": got.count("chld"), "during": during,
                          "getsignal": signal.getsignal(signal.SIGCHLD).__name__}))
        """,
    )
    assert out["usr1"] == 1
    assert out["chld_specific"] >= 1
    assert out["chld_total"] >= 2
    assert out["during"] >= 5
    assert out["getsignal"] == "<lambda>"


@both
def test_program_sigchld_handler_set_while_corun_listens(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, signal, time
        got = []
        def handler(signum, frame):
            got.append(signum)
        import corun.patches.os as coos
        coos._FIRST_LOOK = 10  # a wait that missed SIGCHLD would look again only after 10 s
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 0.3"], os.environ)
        res = {}
        def install():
            time.sleep(0.1)  # the main task is in os.wait() by now: corun listens
            res["previous"] = str(signal.signal(signal.SIGCHLD, handler))
            res["getsignal"] = signal.getsignal(signal.SIGCHLD) is handler
        corun.spawn(install)
        t0 = time.perf_counter()
        os.wait()
        res["elapsed"] = time.perf_counter() - t0
        time.sleep(0.05)
        res["got"] = got
        res["after"] = signal.getsignal(signal.SIGCHLD) is handler
        res["restored"] = str(signal.signal(signal.SIGCHLD, signal.SIG_DFL)) == str(handler)
        print(json.dumps(res))
        """,
    )
    assert out["previous"] in {"Handlers.SIG_DFL", "0"}
    assert out["getsignal"] and out["after"] and out["restored"]
    assert out["got"] == [17]
    assert out["elapsed"] < 5  # woken by SIGCHLD at about 0.3 s, not by the look 10 s later


@both
def test_handler_exception_is_raised_in_the_main_task(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, signal, time
        class Alarm(Exception):
            pass
        def handler(signum, frame):
            raise Alarm("too slow")
        signal.signal(signal.SIGALRM, handler)
        worker_done = []
        def worker():
            time.sleep(0.5)
            worker_done.append(True)
        w = corun.spawn(worker)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.perf_counter()
        try:
            time.sleep(10)
            res = "not interrupted"
        except Alarm as exc:
            res = str(exc)
        elapsed = time.perf_counter() - t0
        w.join()
        print(json.dumps({"res": res, "elapsed": elapsed, "worker_done": worker_done}))
        """,
    )
    assert out["res"] == "too slow"
    assert out["elapsed"] < 5  # the alarm came after 0.2 s, not the end of the 10 s sleep
    assert out["worker_done"] == [True]  # the other task was not the one interrupted


@both
def test_a_handler_arriving_in_the_hub_may_block(prologue: str) -> None:
    # Arriving while the hub polls, it runs in a task, never in the hub, so it
    # can wait like any task (here: time.sleep, cooperative once patched)
    # while the other tasks go on.  No task runs when it comes: one that did
    # (a ticker between two sleeps) would run the handler itself, as the
    # stdlib would, and sleep in its place.  The ticker starts in the handler.
    out = run(
        prologue,
        """
        import json, signal, time
        ticker.kill()
        done = corun.Event()
        in_hub = []
        def handler(signum, frame):
            in_hub.append(corun.getcurrent() is corun.get_hub())
            before = ticks[0]
            other = corun.spawn(_tick)
            time.sleep(0.3)
            other.kill()
            done.set()
            in_hub.append(ticks[0] - before)
        signal.signal(signal.SIGUSR2, handler)
        send_later("USR2", 0.2)
        done.wait(timeout=5)
        print(json.dumps({"done": done.is_set(), "in_hub": in_hub[0], "ticks": in_hub[1]}))
        """,
    )
    assert out["done"] is True
    assert out["in_hub"] is False
    assert out["ticks"] >= 5  # 15 ticks of 20 ms fit in the 0.3 s sleep


@both
def test_a_handler_arriving_in_the_hub_runs_before_the_next_task_goes_on(prologue: str) -> None:
    # The stdlib runs a handler before the main thread takes another step.  A
    # handler that arrives while the hub runs must likewise run before the
    # next task resumes: that task may block the OS thread in C code (here a
    # C SimpleQueue, as gunicorn's master makes before it is patched) with
    # the handler, which alone would wake it, queued behind it.
    out = run(
        prologue,
        """
        import json, os, signal, time
        from corun import monkey
        q = monkey.get_original("queue", "SimpleQueue")()
        signal.signal(signal.SIGUSR2, lambda signum, frame: q.put("handled"))
        def in_the_hub():
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(100):  # the handler runs at one of these bytecodes, in the hub
                pass
        corun.get_hub().run_callback(in_the_hub)
        corun.sleep(0)  # resumed in the same pass, after the callback
        t0 = time.monotonic()
        try:
            got = q.get(timeout=3)
        except Exception as exc:
            got = type(exc).__name__
        print(json.dumps({"got": got, "waited": time.monotonic() - t0}))
        """,
    )
    assert out["got"] == "handled"
    assert out["waited"] < 1


@both
def test_pause_suspends_only_the_calling_task(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, signal, time
        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
        send_later("USR1", 0.3)
        before = ticks[0]
        t0 = time.perf_counter()
        signal.pause()
        print(json.dumps({"got": got, "elapsed": time.perf_counter() - t0, "ticks": ticks[0] - before}))
        """,
    )
    assert out["got"] == [10]
    assert out["elapsed"] < 5  # sent after 0.3 s by another process; a missed signal never returns
    assert out["ticks"] >= 5


@pytest.mark.parametrize("prologue", [NONE, ALONE, ALL], ids=["unpatched", "signal-os-time", "patch_all"])
def test_signal_handler_runs_func_in_a_new_task_and_cancel_restores(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, signal
        runs = []
        def on_signal(tag, *, more):
            runs.append([tag, more, repr(corun.getcurrent())])
        def previous(signum, frame):
            runs.append(["previous"])
        signal.signal(signal.SIGUSR1, previous)
        h = corun.signal_handler(signal.SIGUSR1, on_signal, "usr1", more=1)
        # Once signal is patched, getsignal reports the handler object itself.
        first_getsignal = signal.getsignal(signal.SIGUSR1) is h or not monkey.is_module_patched("signal")
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGUSR1)
            corun.sleep(0.05)
        h.cancel()
        h.cancel()  # a second cancel does nothing
        restored = signal.getsignal(signal.SIGUSR1) is previous
        os.kill(os.getpid(), signal.SIGUSR1)
        corun.sleep(0.05)
        tasks = {r[2] for r in runs if len(r) == 3}
        print(json.dumps({"runs": [r[:2] for r in runs], "distinct_tasks": len(tasks),
                          "main": repr(corun.getcurrent()) in tasks, "first": first_getsignal,
                          "restored": restored, "active": h.active}))
        """,
    )
    assert out["runs"] == [["usr1", 1], ["usr1", 1], ["previous"]]
    assert out["distinct_tasks"] == 2 and not out["main"]
    assert out["first"] and out["restored"] and out["active"] is False


@pytest.mark.parametrize("prologue", [ALONE, ALL], ids=["signal-os-time", "patch_all"])
def test_bad_arguments_get_the_stdlibs_errors(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, signal
        original_signal = monkey.get_original("signal", "signal")
        original_getsignal = monkey.get_original("signal", "getsignal")
        def outcome(func, *args):
            try:
                func(*args)
            except Exception as exc:
                return [type(exc).__name__, str(exc)]
            return "no error"
        res = {}
        bad = [(999, signal.SIG_DFL), ("x", signal.SIG_DFL), (signal.SIGUSR1, 42),
               (signal.SIGKILL, signal.SIG_IGN), (signal.SIGSTOP, lambda s, f: None), (0, signal.SIG_DFL)]
        for args in bad:
            res[repr(args[:1])] = [outcome(signal.signal, *args), outcome(original_signal, *args)]
        for arg in [999, "x", -1]:
            res[f"get {arg!r}"] = [outcome(signal.getsignal, arg), outcome(original_getsignal, arg)]
        res["signal_handler func"] = outcome(corun.signal_handler, signal.SIGUSR1, 42)
        res["signal_handler number"] = outcome(corun.signal_handler, 999, print)
        res["signal_handler SIGKILL"] = outcome(corun.signal_handler, signal.SIGKILL, print)
        # Only the main OS thread may set handlers, patched or not.
        start = monkey.get_original("_thread", "start_new_thread")
        done = monkey.get_original("_thread", "allocate_lock")()
        done.acquire()
        def in_thread():
            try:
                res["thread"] = [outcome(signal.signal, signal.SIGUSR1, signal.SIG_DFL),
                                 outcome(original_signal, signal.SIGUSR1, signal.SIG_DFL)]
            finally:
                done.release()
        start(in_thread, ())
        monkey.get_original("time", "sleep")(0)
        while not done.acquire(False):
            corun.sleep(0.01)
        print(json.dumps(res))
        """,
    )
    assert out.pop("signal_handler func")[0] == "TypeError"
    assert out.pop("signal_handler number") == ["ValueError", "signal number out of range"]
    assert out.pop("signal_handler SIGKILL") == ["OSError", "[Errno 22] Invalid argument"]
    for case, (patched, original) in out.items():
        assert patched == original != "no error", case


@both
def test_handlers_keep_working_in_a_forked_child(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, signal, time
        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(os.getpid()))
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)
            os._exit(0 if got == [os.getpid()] else 1)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        print(json.dumps({"child": code, "parent_got": got}))
        """,
    )
    assert out == {"child": 0, "parent_got": []}


def test_ctrl_c_while_threads_run_python_code_reaches_the_main_task() -> None:
    # Tasks started as threads are busy in Python code when SIGINT arrives, so
    # the handler runs inside one of them; the stdlib would raise in the main
    # thread, and so must corun, not end that one "thread".
    proc = run_patched(
        """
        import os, signal, threading, time
        from corun import monkey
        def busy():
            while True:
                sum(range(200))
                time.sleep(0)
        threads = [threading.Thread(target=busy, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        real_start = monkey.get_original("_thread", "start_new_thread")
        real_sleep = monkey.get_original("time", "sleep")
        real_start(lambda: (real_sleep(0.3), os.kill(os.getpid(), signal.SIGINT)), ())
        try:
            for t in threads:
                t.join()
        except KeyboardInterrupt:
            print("KeyboardInterrupt in the main task")
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["KeyboardInterrupt in the main task", "True"]
    assert "Exception in thread" not in proc.stderr


def test_interrupt_main_from_a_thread_lands_before_the_main_task_goes_on() -> None:
    # The thread ends right after interrupting: the main task's join must not
    # return first and leave the KeyboardInterrupt to land later, elsewhere.
    proc = run_patched(
        """
        import _thread, threading, time
        t = threading.Thread(target=_thread.interrupt_main)
        try:
            t.start()
            t.join()
            print("join returned first")
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        t.join()
        time.sleep(0.05)
        print("nothing late")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["KeyboardInterrupt", "nothing late"]


# -- an armed alarm counts as something that can wake the hub ---------------------

# A program of the usual recipe: a SIGALRM handler that raises, an alarm armed
# around a call that blocks.  No task but the main one, nothing else to wake it.
ALARM = """
import json, os, queue, signal, socket, subprocess, threading, time
import corun
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
def outcome(wait):
    t0 = time.perf_counter()
    try:
        wait()
        res = "returned"
    except Alarm:
        res = "Alarm"
    except corun.LoopExit:
        res = "LoopExit"
    return {"res": res, "elapsed": time.perf_counter() - t0}
"""

ALARM_WAITS = {
    "lock": "lock = threading.Lock(); lock.acquire(); wait = lock.acquire",
    "queue": "wait = queue.Queue().get",
    "condition": "cond = threading.Condition()\ndef wait():\n    with cond:\n        cond.wait()",
    "sleep": "wait = lambda: time.sleep(5)",
    "socket": "a, b = socket.socketpair(); wait = lambda: a.recv(1)",
    "process": "child = subprocess.Popen(['sleep', '5']); wait = child.wait",
    "corun.Event": "wait = corun.Event().wait",
}


@pytest.mark.parametrize("wait", ALARM_WAITS)
def test_an_armed_alarm_wakes_the_hub_and_its_exception_reaches_the_main_task(wait: str) -> None:
    out = run_json(
        ALL
        + ALARM
        + ALARM_WAITS[wait]
        + "\nsignal.setitimer(signal.ITIMER_REAL, 0.2)\nprint(json.dumps(outcome(wait)))\n"
    )
    assert out["res"] == "Alarm"
    assert 0.15 < out["elapsed"] < 2


def test_an_alarm_goes_to_the_main_task_while_a_thread_waits_too() -> None:
    # The stdlib runs the handler in the main thread: its exception surfaces
    # in the main thread's wait, and the worker keeps waiting.
    out = run_json(
        ALL
        + ALARM
        + """
q = queue.Queue()
got = []
done = threading.Event()
def work():
    got.append(q.get())
    done.set()
worker = threading.Thread(target=work)
worker.start()
signal.alarm(1)
first = outcome(done.wait)
alive = worker.is_alive()
q.put("item")
worker.join()
print(json.dumps({"first": first, "alive": alive, "got": got}))
"""
    )
    assert out["first"]["res"] == "Alarm" and 0.5 < out["first"]["elapsed"] < 3
    assert out["alive"] is True and out["got"] == ["item"]


NO_ALARM_TO_COME = {
    "disarmed": "signal.alarm(5); signal.alarm(0)",
    "ignored": "signal.signal(signal.SIGALRM, signal.SIG_IGN); signal.alarm(5)",
    # CPU time: a process whose every task waits uses none, so it never fires.
    "cpu-time timer": "signal.signal(signal.SIGVTALRM, on_alarm)\n"
    "signal.setitimer(signal.ITIMER_VIRTUAL, 0.5)",
}


@pytest.mark.parametrize("arm", NO_ALARM_TO_COME)
def test_a_hang_with_no_alarm_to_come_is_reported_at_once(arm: str) -> None:
    out = run_json(ALL + ALARM + NO_ALARM_TO_COME[arm] + "\nprint(json.dumps(outcome(queue.Queue().get)))\n")
    assert out["res"] == "LoopExit"
    assert out["elapsed"] < 1


def test_a_hang_is_reported_once_the_last_alarm_has_run_its_handler() -> None:
    # A handler that neither raises nor wakes anyone: plainly the program
    # would then hang for good; the hub reports it instead.  Re-arming from
    # the handler keeps it waiting.
    out = run_json(
        ALL
        + ALARM
        + """
runs = []
def rearm(signum, frame):
    runs.append(signum)
    if len(runs) < 3:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
signal.signal(signal.SIGALRM, rearm)
signal.setitimer(signal.ITIMER_REAL, 0.1)
res = outcome(queue.Queue().get)
res["runs"] = len(runs)
print(json.dumps(res))
"""
    )
    assert out["res"] == "LoopExit" and out["runs"] == 3
    assert 0.25 < out["elapsed"] < 3


def test_interval_timer_keeps_the_hub_waiting_until_its_handler_raises() -> None:
    out = run_json(
        ALL
        + ALARM
        + """
runs = []
def every(signum, frame):
    runs.append(signum)
    if len(runs) == 4:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise Alarm()
signal.signal(signal.SIGALRM, every)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
res = outcome(threading.Event().wait)
res["runs"] = len(runs)
print(json.dumps(res))
"""
    )
    assert out["res"] == "Alarm" and out["runs"] == 4
    assert 0.15 < out["elapsed"] < 3


# -- a handler for a signal another process may send keeps the hub waiting ----------

# The main task waits on something only the handler releases; the signal comes
# from another process 0.3 s later.
HANDLER_RELEASES = {
    "threading.Event under patch_all": (
        ALL,
        "import threading\nstop = threading.Event()\nset_stop = stop.set\nwait = stop.wait\n",
    ),
    "queue.Queue under patch_all": (
        ALL,
        "import queue\nq = queue.Queue()\nset_stop = lambda: q.put(True)\nwait = q.get\n",
    ),
    "corun.Event, nothing patched": (
        NONE,
        "import corun\nstop = corun.Event()\nset_stop = stop.set\nwait = stop.wait\n",
    ),
}


@pytest.mark.parametrize("case", HANDLER_RELEASES)
@pytest.mark.parametrize("signame", ["TERM", "HUP", "USR1"])
def test_a_wait_that_only_a_signal_handler_ends_waits_for_the_signal(case: str, signame: str) -> None:
    prologue, setup = HANDLER_RELEASES[case]
    # No ticker: nothing but the signal may end the wait.
    out = run_json(
        prologue
        + SEND_LATER
        + setup
        + f"""
import json, signal, time
import corun
signal.signal(signal.SIG{signame}, lambda signum, frame: set_stop())
sender = send_later("{signame}", 0.3)
t0 = time.perf_counter()
try:
    res = ["returned", wait()]
except corun.LoopExit as exc:
    res = ["LoopExit", str(exc)]
res.append(time.perf_counter() - t0)
sender.wait()
print(json.dumps(res))
""",
    )
    assert out[:2] == ["returned", True], out
    assert 0.25 < out[2] < 5


def test_signal_handlers_of_no_outside_signal_do_not_hide_a_deadlock() -> None:
    # Ctrl-C's default handler, a timer signal without its timer, an ignored
    # signal and the default disposition are no wake-up to come.
    out = run_json(
        ALL
        + """
import json, queue, signal, time
import corun
signal.signal(signal.SIGPROF, lambda signum, frame: None)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
t0 = time.perf_counter()
try:
    queue.Queue().get()
    res = "returned"
except corun.LoopExit as exc:
    res = str(exc)
print(json.dumps([res, time.perf_counter() - t0]))
"""
    )
    assert out[0].startswith("would block forever") and "signal handler" in out[0]
    assert out[1] < 1


@both
def test_signal_signal_in_a_thread_raises_as_plainly_and_a_task_may_set_handlers(prologue: str) -> None:
    out = run(
        prologue,
        """
import json, signal, threading
res = {}
def set_it(key):
    try:
        signal.signal(signal.SIGUSR2, lambda signum, frame: None)
        res[key] = "set"
    except ValueError as exc:
        res[key] = str(exc)
thread = threading.Thread(target=set_it, args=("thread",))
thread.start()
thread.join()
res["after thread"] = signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
corun.spawn(set_it, "task").join()
res["after task"] = callable(signal.getsignal(signal.SIGUSR2))
print(json.dumps(res))
""",
    )
    if prologue == ALL:
        assert out["thread"] == "signal only works in main thread of the main interpreter"
        assert out["after thread"] is True
    else:
        # threading is not patched: the thread is an OS thread, and the stdlib refuses it too.
        assert out["thread"].startswith("signal only works in main thread")
    assert out["task"] == "set" and out["after task"] is True
