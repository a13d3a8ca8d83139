"""The cooperative ``os``: fork leaves only the forking task running in the child; waits block one task.

Every program runs in a fresh interpreter, patched either with the areas it
needs or with ``patch_all()``.
"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Any

import pytest

from ..conftest import run_json, run_patched, run_python, ticker

ALONE = "from corun import monkey\nfor _m in ('os', 'socket', 'time'): monkey.patch_module(_m)\n"
ALL = "from corun import monkey; monkey.patch_all()\n"

both = pytest.mark.parametrize("prologue", [ALONE, ALL], ids=["os-socket-time", "patch_all"])

# A task that counts every 20 ms, to see that other tasks keep running.
TICKER = ticker(0.02)


def run(prologue: str, body: str, *, timeout: float = 30) -> Any:
    """Run ``body`` after ``prologue``; return the JSON it printed on its last line."""
    return run_json(prologue + TICKER + textwrap.dedent(body), timeout=timeout)


@both
def test_forked_child_uses_sockets_and_tasks_while_the_parent_waits(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, socket, time
        parent, child = socket.socketpair()
        ran = []  # which process ran the bystander
        def bystander():
            time.sleep(0.3)
            ran.append(os.getpid())
            print("bystander ran in", os.getpid(), flush=True)
        corun.spawn(bystander)
        pid = os.fork()
        if pid == 0:
            parent.close()
            at_fork = ticks[0]
            def talk(name):
                for i in range(3):
                    child.sendall(f"{name}{i} ".encode())
                    time.sleep(0.1)
            corun.joinall([corun.spawn(talk, "a"), corun.spawn(talk, "b")], raise_error=True)
            child.sendall(b"ticks:%d" % (ticks[0] - at_fork))
            child.close()
            time.sleep(0.5)  # long enough for the bystander's timer, had it survived the fork
            os._exit(7)
        child.close()
        received = []
        def receive():
            while data := parent.recv(1024):
                received.append(data)
        reader = corun.spawn(receive)
        before = ticks[0]
        wpid, status = os.waitpid(pid, 0)
        during = ticks[0] - before
        reader.get()
        words = b"".join(received).decode().split()
        print(json.dumps({"pid": wpid == pid, "code": os.waitstatus_to_exitcode(status), "during": during,
                          "words": sorted(w for w in words if not w.startswith("ticks")),
                          "child_ticks": int(words[-1].split(":")[1]), "ran": ran == [os.getpid()]}))
        """,
    )
    assert out["pid"] and out["code"] == 7
    assert out["during"] >= 20  # the child takes ~0.8 s; ~40 ticks of 20 ms
    assert out["words"] == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert out["child_ticks"] == 0  # the parent's ticker did not run in the child
    assert out["ran"]  # the bystander ran once, in the parent


@both
def test_parent_tasks_do_not_run_in_the_child(prologue: str) -> None:
    # The parent's tasks are ready, sleeping, and waiting on a lock and an
    # event that the child itself releases and sets: none of them may run there.
    proc = run_python(
        prologue
        + textwrap.dedent(
            """
            import os, time, corun
            lock, event = corun.Lock(), corun.Event()
            lock.acquire()
            def report(what):
                # One write per line: parent and child share the pipe, and a
                # print may write a line in pieces that interleave.
                os.write(1, f"{what} {os.getpid()}\\n".encode())
            def on_lock():
                with lock:
                    report("lock")
            def on_event():
                event.wait()
                report("event")
            def sleeper():
                time.sleep(0.2)
                report("sleeper")
            tasks = [corun.spawn(f) for f in (on_lock, on_event, sleeper)] + [corun.spawn(report, "ready")]
            corun.sleep(0)  # the first three are now waiting; "ready" has run
            late = corun.spawn(report, "late")  # started, not yet run
            pid = os.fork()
            if pid == 0:
                lock.release()
                event.set()
                def own():
                    report("child-task")
                corun.spawn(own).join()
                time.sleep(0.4)
                os._exit(0)
            status = os.waitpid(pid, 0)[1]
            lock.release()
            event.set()
            corun.joinall(tasks + [late])
            print("child", pid, "status", os.waitstatus_to_exitcode(status))
            """
        )
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    child = lines[-2].split()[1]
    by_pid: dict[str, list[str]] = {}
    for line in lines[:-2]:
        what, pid = line.split()
        by_pid.setdefault(pid, []).append(what)
    assert by_pid.pop(child) == ["child-task"]
    [(_, in_parent)] = by_pid.items()
    assert sorted(in_parent) == ["event", "late", "lock", "ready", "sleeper"]
    assert lines[-2].endswith("status 0")


@both
@pytest.mark.parametrize(
    ("ending", "status"),
    [("return 'done'", 0), ("sys.exit(9)", 9), ("raise ValueError('boom')", 1)],
    ids=["return", "sys.exit", "raise"],
)
def test_child_forked_from_a_task_ends_with_that_task(prologue: str, ending: str, status: int) -> None:
    proc = run_python(
        prologue
        + TICKER
        + textwrap.dedent(
            f"""
            import json, os, sys, time
            def forker():
                pid = os.fork()
                if pid == 0:
                    corun.spawn(time.sleep, 0.2)  # started in the child: waited for
                    {ending}
                return pid
            try:
                pid = corun.spawn(forker).get()
                before = ticks[0]
                code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                print(json.dumps({{"code": code, "during": ticks[0] - before}}))
            finally:
                print("main finally ran", file=sys.stderr)
            """
        )
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["code"] == status
    if status == 0:
        assert out["during"] >= 5  # the child's own task was awaited before it exited
    # The parent's main task did not unwind (again) in the child.
    assert proc.stderr.count("main finally ran") == 1


@both
def test_a_task_forking_amid_the_hubs_pass_leaves_the_child_a_working_hub(prologue: str) -> None:
    # multiprocessing forks from its pool's threads, tasks resumed in the
    # middle of the hub's pass over ready tasks, due timers or ready fds.
    out = run(
        prologue,
        """
        import json, os, time
        def forker(after):
            time.sleep(after)
            pid = os.fork()
            if pid == 0:
                time.sleep(0.05)  # back to the hub, in the middle of its pass
                os._exit(7)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        def bystander():
            time.sleep(0)
        codes = []
        for after in (0, 0.1):  # resumed as a ready task, then by a due timer
            tasks = [corun.spawn(forker, after)] + [corun.spawn(bystander) for _ in range(3)]
            if after:
                tasks += [corun.spawn(time.sleep, after) for _ in range(3)]
            codes.append(tasks[0].get())
            corun.joinall(tasks)
        print(json.dumps({"codes": codes}))
        """,
    )
    assert out["codes"] == [7, 7]


@both
def test_posix_spawn_children_are_awaited_cooperatively(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os
        def spawn(code, delay="0.2"):
            return os.posix_spawn("/bin/sh", ["sh", "-c", f"sleep {delay}; exit {code}"], os.environ)
        res = {}
        pid = spawn(3)
        before = ticks[0]
        wpid, status = os.waitpid(pid, 0)
        res["waitpid"] = [wpid == pid, os.waitstatus_to_exitcode(status), ticks[0] - before]
        pid = spawn(4)
        before = ticks[0]
        wpid, status = os.wait()
        res["wait"] = [wpid == pid, os.waitstatus_to_exitcode(status), ticks[0] - before]
        pid = spawn(5)
        before = ticks[0]
        wpid, status = os.waitpid(-1, 0)
        res["any"] = [wpid == pid, os.waitstatus_to_exitcode(status), ticks[0] - before]
        pid = spawn(6)
        before = ticks[0]
        wpid, status, usage = os.wait4(pid, 0)
        res["wait4"] = [wpid == pid, os.waitstatus_to_exitcode(status), ticks[0] - before]
        pid = spawn(7)
        before = ticks[0]
        wpid, status, usage = os.wait3(0)
        res["wait3"] = [wpid == pid, os.waitstatus_to_exitcode(status), ticks[0] - before]
        pid = spawn(8)
        before = ticks[0]
        info = os.waitid(os.P_PID, pid, os.WEXITED)
        res["waitid"] = [info.si_pid == pid, info.si_status, ticks[0] - before]
        pid = spawn(9)
        before = ticks[0]
        pidfd = os.pidfd_open(pid)
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        os.close(pidfd)
        res["waitid_pidfd"] = [info.si_pid == pid, info.si_status, ticks[0] - before]
        # Ten children at once, each awaited by its own task.
        import time
        t0 = time.perf_counter()
        pids = [spawn(0, "0.5") for _ in range(10)]
        before = ticks[0]
        waiters = [corun.spawn(os.waitpid, pid, 0) for pid in pids]
        corun.joinall(waiters, raise_error=True)
        res["ten"] = [sorted(w.value[0] for w in waiters) == sorted(pids), ticks[0] - before,
                      time.perf_counter() - t0]
        print(json.dumps(res))
        """,
    )
    for name, code in [("waitpid", 3), ("wait", 4), ("any", 5), ("wait4", 6), ("wait3", 7)]:
        found, status, ticked = out[name]
        assert found and status == code, name
        assert ticked >= 5, name  # ~10 ticks of 20 ms in 0.2 s
    for name, code in [("waitid", 8), ("waitid_pidfd", 9)]:
        found, status, ticked = out[name]
        assert found and status == code and ticked >= 5, name
    found, ticked, elapsed = out["ten"]
    assert found and ticked >= 5
    assert elapsed < 2.5  # about 0.5 s: the ten ran side by side (one after another: 5 s)


@both
def test_any_child_waits_listen_for_sigchld_only_while_they_wait(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, signal, time
        import _signal
        import corun.patches.os as coos
        coos._FIRST_LOOK = 10  # a wait that missed SIGCHLD would look again only after 10 s
        res = {"before": str(_signal.getsignal(signal.SIGCHLD))}
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 0.3"], os.environ)
        def look():
            time.sleep(0.1)
            res["during_os"] = _signal.getsignal(signal.SIGCHLD) not in (signal.SIG_DFL, 0)
            if monkey.is_module_patched("signal"):
                res["during_program"] = str(signal.getsignal(signal.SIGCHLD))
        corun.spawn(look)
        t0 = time.perf_counter()
        os.wait()
        res["elapsed"] = time.perf_counter() - t0
        res["after"] = str(_signal.getsignal(signal.SIGCHLD))
        print(json.dumps(res))
        """,
    )
    assert out["before"] == out["after"] == "0"
    assert out["during_os"] is True  # corun's handler, in front ...
    # ... of what the program set, which signal.getsignal reports once signal is patched.
    assert out.get("during_program", "0") in {"Handlers.SIG_DFL", "0"}
    assert out["elapsed"] < 5  # woken by SIGCHLD at about 0.3 s, not by the look 10 s later


@both
def test_wnohang_goes_straight_to_the_original(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, time
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 0.3"], os.environ)
        t0 = time.perf_counter()
        first = os.waitpid(pid, os.WNOHANG)
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG)
        rusage = os.wait4(pid, os.WNOHANG)[:2]
        quick = time.perf_counter() - t0 < 0.1
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.02)
        print(json.dumps({"first": first, "waitid": info, "wait4": rusage, "quick": quick}))
        """,
    )
    assert out == {"first": [0, 0], "waitid": None, "wait4": [0, 0], "quick": True}


@both
def test_bad_arguments_get_the_stdlibs_errors(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os
        def outcome(func, *args):
            try:
                func(*args)
            except TypeError as exc:
                if "argument" in str(exc):  # the arity message of a builtin differs from a function's
                    return ["TypeError", "wrong number of arguments"]
                return ["TypeError", str(exc)]
            except Exception as exc:
                return [type(exc).__name__, str(exc)]
            return "no error"
        cases = [
            ("waitpid", ("x", 0)),
            ("waitpid", (1, "x")),
            ("waitpid", (-5, 0)),
            ("waitpid", (1, 0)),
            ("waitpid", (-1, 0)),
            ("wait", ()),
            ("wait", (1,)),
            ("wait3", ("x",)),
            ("wait3", (0,)),
            ("wait4", (1, 0)),
            ("waitid", (os.P_PID, 1, 0)),
            ("waitid", (os.P_ALL, 0, os.WEXITED)),
            ("waitid", (12345, 0, os.WEXITED)),
        ]
        res = []
        for name, args in cases:
            patched = outcome(getattr(os, name), *args)
            original = outcome(monkey.get_original("os", name), *args)
            res.append([name, patched, original])
        print(json.dumps(res))
        """,
    )
    for name, patched, original in out:
        assert patched == original != "no error", name


def test_forkpty_child_forgets_the_parent_tasks_too() -> None:
    out = run(
        ALONE,
        """
        import json, os, time
        def bystander():
            time.sleep(0.2)
            print("bystander", os.getpid(), flush=True)
        corun.spawn(bystander)
        pid, fd = os.forkpty()
        if pid == 0:
            time.sleep(0.4)
            print("child done")
            os._exit(3)
        before = ticks[0]
        status = os.waitpid(pid, 0)[1]
        chunks = []
        while True:
            try:
                data = os.read(fd, 1024)
            except OSError:  # EIO: all read, and the child's end is closed
                break
            if not data:
                break
            chunks.append(data)
        output = b"".join(chunks).decode()
        os.close(fd)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status), "output": output,
                          "during": ticks[0] - before}))
        """,
    )
    assert out["code"] == 3
    assert out["output"] == "child done\r\n"
    assert out["during"] >= 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_multiprocessing_fork_children_are_joined_cooperatively() -> None:
    out = run(
        ALL,
        """
        import json, multiprocessing, os, time
        def work(q):
            time.sleep(0.3)
            q.put(os.getpid())
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        procs = [ctx.Process(target=work, args=(q,)) for _ in range(3)]
        for p in procs:
            p.start()
        before = ticks[0]
        for p in procs:
            p.join()
        print(json.dumps({"codes": [p.exitcode for p in procs], "during": ticks[0] - before,
                          "pids": sorted(q.get(timeout=5) for _ in procs) == sorted(p.pid for p in procs)}))
        """,
    )
    assert out["codes"] == [0, 0, 0] and out["pids"]
    assert out["during"] >= 5


def test_os_read_of_an_empty_blocking_pipe_parks_only_the_task() -> None:
    proc = run_patched(
        """
        import os, threading, time
        r, w = os.pipe()
        threading.Timer(0.2, os.write, (w, b"hello")).start()
        start = time.monotonic()
        data = os.read(r, 10)  # the timer is a task: a blocking read would never return
        print(data.decode(), time.monotonic() - start < 3)
        os.set_blocking(r, False)
        try:
            os.read(r, 10)
        except BlockingIOError:
            print("non-blocking fd still raises")
        with open(__import__("sys").executable, "rb") as f:
            print(len(os.read(f.fileno(), 4)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["hello True", "non-blocking fd still raises", "4"]


# -- os.system ------------------------------------------------------------------------


@both
def test_system_parks_only_the_calling_task(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, time
        t0 = time.perf_counter()
        shells = [corun.spawn(os.system, "sleep 0.3") for _ in range(10)]
        corun.joinall(shells, raise_error=True)
        ten = time.perf_counter() - t0
        before = ticks[0]
        status = os.system("sleep 0.5")
        print(json.dumps({"ten": ten, "statuses": [s.value for s in shells], "status": status,
                          "ticks": ticks[0] - before}))
        """,
    )
    assert out["statuses"] == [0] * 10 and out["status"] == 0
    assert out["ten"] < 1.5  # one after another: 3 s
    assert out["ticks"] >= 10  # 25 ticks of 20 ms fit in the 0.5 s shell


@both
def test_system_returns_what_the_original_returns(prologue: str, tmp_path: Any) -> None:
    out = run(
        prologue,
        f"""
        import json, os, pathlib, signal, sys
        original = monkey.get_original("os", "system")
        os.environ["COMMAND_SEES"] = "this"
        os.chdir({str(tmp_path)!r})
        audited = []
        sys.addaudithook(lambda event, args: audited.append(repr(args)) if event == "os.system" else None)
        def outcome(func, command):
            try:
                return func(command)
            except Exception as exc:
                return [type(exc).__name__, str(exc)]
        commands = ["exit 3", "", "kill -9 $$", "no-such-command-here 2>/dev/null", b"exit 4",
                    pathlib.Path("true"), "test \\"$COMMAND_SEES\\" = this && echo $0 > shell-name",
                    "-c", None, 3, "a\\0b", bytearray(b"true")]
        res = {{}}
        for command in commands:
            res[repr(command)] = [outcome(os.system, command), outcome(original, command),
                                  open("shell-name").read() if os.path.exists("shell-name") else None]
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel: -1
        res["SIGCHLD ignored"] = [os.system("exit 5"), original("exit 5"), None]
        print(json.dumps({{"res": res, "patched": os.system is not original,
                          "audited": audited[::2] == audited[1::2] and len(audited)}}))
        """,
    )
    assert out["patched"]
    for command, (ours, theirs, _) in out["res"].items():
        assert ours == theirs, command
    res = out["res"]
    assert res["'exit 3'"][0] == 3 << 8 and res["'kill -9 $$'"][0] == 9
    assert res["'no-such-command-here 2>/dev/null'"][0] == 127 << 8
    assert res["'test \"$COMMAND_SEES\" = this && echo $0 > shell-name'"] == [0, 0, "sh\n"]
    assert res["None"][0][0] == "TypeError" and res["'a\\x00b'"][0][0] == "ValueError"
    assert res["SIGCHLD ignored"][0] == -1
    assert out["audited"] == 2 * 9  # each call that got as far as running a command, both ways


@both
def test_system_ignores_sigint_and_sigquit_in_the_caller_while_the_shell_runs(prologue: str) -> None:
    # What Ctrl-C does to a program in os.system: the shell's process group
    # gets SIGINT, the shell dies of it, the program goes on.
    out = run(
        prologue,
        """
        import json, os, signal, time
        seen = {}
        def look():
            time.sleep(0.2)
            seen["during"] = [repr(signal.getsignal(signal.SIGINT)), repr(signal.getsignal(signal.SIGQUIT))]
        watcher = corun.spawn(look)
        # The shell sends both to this process alone, then goes on.
        status = os.system("kill -INT $PPID; kill -QUIT $PPID; sleep 0.4; grep SigIgn /proc/$$/status > ign")
        watcher.join()
        shell_ignores = int(open("ign").read().split()[1], 16)
        seen["after"] = [repr(signal.getsignal(signal.SIGINT)), repr(signal.getsignal(signal.SIGQUIT))]
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
            seen["interrupt"] = "none"
        except KeyboardInterrupt:
            seen["interrupt"] = "KeyboardInterrupt"
        # A signal the program ignores stays ignored in the shell.
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        os.system("grep SigIgn /proc/$$/status > ign")
        quit_ignored = int(open("ign").read().split()[1], 16)
        os.remove("ign")
        print(json.dumps({"status": status, "seen": seen, "int": bool(shell_ignores & 1 << 1),
                          "quit": bool(shell_ignores & 1 << 2), "quit_kept": bool(quit_ignored & 1 << 2)}))
        """,
    )
    assert out["status"] == 0
    expected = ["<built-in function default_int_handler>", "<Handlers.SIG_DFL: 0>"]
    # The SIG_IGN standing in for them shows only where signal.getsignal is the original.
    during = expected if prologue == ALL else ["<Handlers.SIG_IGN: 1>"] * 2
    assert out["seen"] == {"during": during, "after": expected, "interrupt": "KeyboardInterrupt"}
    assert out["int"] is False and out["quit"] is False  # the shell has them at their defaults
    assert out["quit_kept"] is True


def test_system_holds_the_programs_sigchld_handler_until_the_shell_is_reaped() -> None:
    # As the C system() blocks SIGCHLD: a handler that reaps every child must
    # not take the shell's status.  corun's own SIGCHLD waits go on meanwhile.
    # (The program's handler is held where it was set through the patched
    # signal.signal.)
    out = run(
        ALL,
        """
        import json, os, signal, time
        reaped, order = [], []
        def reap(signum, frame):
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                reaped.append(os.waitstatus_to_exitcode(status))
        signal.signal(signal.SIGCHLD, reap)
        def other_child():
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 0.2; exit 6"], os.environ)
            # Stops as well as exits: a wait that relies on SIGCHLD, not on a pidfd.
            _, status = os.waitpid(pid, os.WUNTRACED)
            order.append(["other", os.waitstatus_to_exitcode(status)])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        waiter = corun.spawn(other_child)
        corun.sleep(0.05)
        signal.signal(signal.SIGCHLD, reap)
        status = os.system("sleep 1; exit 3")
        order.append(["system", status])
        after = list(reaped)
        os.system("exit 1")
        waiter.join()
        print(json.dumps({"order": order, "after": after, "reaped": reaped}))
        """,
    )
    assert out["order"] == [["other", 6], ["system", 3 << 8]]
    assert out["after"] == []  # the handler ran once the shell was reaped, and found nothing
    assert out["reaped"] == []


def test_system_raises_what_was_thrown_meanwhile_once_the_shell_has_ended(tmp_path: Any) -> None:
    out = run(
        ALL,
        f"""
        import json, os, time
        os.chdir({str(tmp_path)!r})
        t0 = time.perf_counter()
        try:
            with corun.Timeout(0.1):
                os.system("sleep 0.5; echo ended > mark")
            res = "returned"
        except corun.Timeout:
            res = "Timeout"
        elapsed = time.perf_counter() - t0
        try:
            left = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            left = "no child"
        print(json.dumps({{"res": res, "elapsed": elapsed, "mark": open("mark").read(), "left": left}}))
        """,
    )
    assert out["res"] == "Timeout" and out["elapsed"] > 0.45
    assert out["mark"] == "ended\n" and out["left"] == "no child"


def test_system_in_another_os_thread_and_without_a_shell() -> None:
    out = run(
        ALL,
        """
        import json, os
        import corun.patches.os as coos
        start = monkey.get_original("_thread", "start_new_thread")
        lock = monkey.get_original("_thread", "allocate_lock")()
        lock.acquire()
        res = {}
        def in_thread():
            try:
                res["thread"] = os.system("exit 2")
            finally:
                lock.release()
        start(in_thread, ())
        while not lock.acquire(False):
            corun.sleep(0.01)
        coos._SHELL = "/no/such/shell"
        res["no shell"] = os.system("true")
        print(json.dumps(res))
        """,
    )
    assert out == {"thread": 2 << 8, "no shell": 127 << 8}


def test_a_child_forked_while_a_shell_runs_gets_its_signals_back() -> None:
    out = run(
        ALL,
        """
        import json, os, signal, subprocess, time
        raw_getsignal = monkey.get_original("signal", "getsignal")
        got = []
        signal.signal(signal.SIGCHLD, lambda signum, frame: got.append(signum))
        shell = corun.spawn(os.system, "sleep 0.5")
        corun.sleep(0.1)
        during = raw_getsignal(signal.SIGINT) is signal.SIG_IGN
        pid = os.fork()
        if pid == 0:
            restored = raw_getsignal(signal.SIGINT) is not signal.SIG_IGN
            subprocess.run(["true"])
            time.sleep(0.1)
            os._exit(0 if restored and got else 1)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        shell.join()
        print(json.dumps({"during": during, "child": code, "status": shell.value}))
        """,
    )
    assert out == {"during": True, "child": 0, "status": 0}


def test_os_read_and_write_on_a_sockets_fd_block_only_the_task_as_the_stdlib_would_block() -> None:
    out = run(
        ALL,
        """
        import json, os, socket, threading, time
        a, b = socket.socketpair()  # timeout None: the stdlib's fds would be blocking
        threading.Timer(0.3, a.sendall, (b"late",)).start()
        before = ticks[0]
        late = os.read(b.fileno(), 100).decode()
        read_ticks = ticks[0] - before
        copy = os.dup(b.fileno())  # the same open file, handed to other code
        threading.Timer(0.2, a.sendall, (b"copy",)).start()
        via_copy = os.read(copy, 100).decode()
        size = 4 << 20  # far more than the socket buffers hold
        got = bytearray()
        def drain():
            while len(got) < size:
                got.extend(a.recv(65536))
        reader = threading.Thread(target=drain)
        reader.start()
        before = ticks[0]
        written = os.write(b.fileno(), b"x" * size)  # all of it, as a blocking write
        reader.join()
        write_ticks = ticks[0] - before
        b.settimeout(5.0)  # the stdlib's socket is non-blocking now
        try:
            os.read(b.fileno(), 10)
            timed = "read"
        except BlockingIOError:
            timed = "BlockingIOError"
        print(json.dumps({"late": late, "read_ticks": read_ticks, "copy": via_copy, "written": written,
                          "got": len(got), "write_ticks": write_ticks, "timed": timed}))
        """,
    )
    assert (out["late"], out["copy"], out["timed"]) == ("late", "copy", "BlockingIOError")
    assert out["written"] == out["got"] == 4 << 20
    assert out["read_ticks"] >= 5  # 0.3 s of 20 ms ticks went on while the main task read


def test_os_write_to_a_full_blocking_pipe_parks_only_the_task() -> None:
    out = run(
        ALL,
        """
        import hashlib, json, os, threading, time
        r, w = os.pipe()
        data = os.urandom(1 << 20)  # sixteen times what the pipe holds
        got = bytearray()
        def slow_reader():
            time.sleep(0.3)
            while len(got) < len(data):
                got.extend(os.read(r, 65536))
        reader = threading.Thread(target=slow_reader)
        reader.start()
        before = ticks[0]
        written = os.write(w, data)
        during = ticks[0] - before
        reader.join()
        os.set_blocking(w, False)  # the program's own choice: a full pipe raises
        try:
            while True:
                os.write(w, b"y" * 4096)
        except BlockingIOError:
            full = "BlockingIOError"
        same = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        print(json.dumps({"written": written, "same": same, "during": during, "full": full}))
        """,
    )
    assert (out["written"], out["same"], out["full"]) == (1 << 20, True, "BlockingIOError")
    assert out["during"] >= 5  # the writer waited for room 0.3 s without holding up the ticker


def test_os_write_keeps_a_datagram_whole() -> None:
    out = run(
        ALL,
        """
        import json, os, socket
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        fd = b.detach()  # blocking again, as the stdlib leaves it
        sent = os.write(fd, b"d" * 10000)  # more than PIPE_BUF, yet one datagram
        print(json.dumps({"sent": sent, "received": len(a.recv(65536)), "blocking": os.get_blocking(fd)}))
        """,
    )
    assert out == {"sent": 10000, "received": 10000, "blocking": True}


def test_os_read_and_write_on_the_wrong_end_of_a_pipe_fail_at_once() -> None:
    proc = run_patched(
        """
        import os
        r, w = os.pipe()
        for call, args in ((os.write, (r, b"x")), (os.read, (w, 1))):
            try:
                call(*args)  # poll would never call either fd ready for it
            except OSError as exc:
                print(call.__name__, exc.errno)
        """,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["write", "9", "read", "9"]
