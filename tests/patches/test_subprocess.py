"""The cooperative ``subprocess``: waits and pipes block only their task; errors as the stdlib's.

Every program runs in a fresh interpreter, patched either with ``subprocess``
alone or with ``patch_all()``.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from ..conftest import run_json, ticker

ALONE = "from corun import monkey; monkey.patch_module('subprocess')\n"
ALL = "from corun import monkey; monkey.patch_all()\n"

both = pytest.mark.parametrize("prologue", [ALONE, ALL], ids=["subprocess-alone", "patch_all"])

# A task that counts every 50 ms, to see that other tasks keep running.
TICKER = ticker(0.05)


def run(prologue: str, body: str, *, timeout: float = 30) -> Any:
    """Run ``body`` after ``prologue``; return the JSON it printed on its last line."""
    return run_json(prologue + TICKER + textwrap.dedent(body), timeout=timeout)


@both
def test_ten_children_from_ten_tasks_run_in_parallel(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess, time
        t0 = time.perf_counter()
        jobs = [corun.spawn(lambda: subprocess.run(["sleep", "0.5"]).returncode) for _ in range(10)]
        corun.joinall(jobs, raise_error=True)
        print(json.dumps({"elapsed": time.perf_counter() - t0, "codes": [j.value for j in jobs],
                          "ticks": ticks[0]}))
        """,
    )
    assert out["codes"] == [0] * 10
    assert out["elapsed"] < 2.5  # about 0.5 s; 10 x 0.5 s one after the other would be 5 s
    assert out["ticks"] >= 5


@both
def test_wait_blocks_only_the_waiting_task(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess
        p = subprocess.Popen(["sleep", "0.6"])
        before = ticks[0]
        try:
            p.wait(timeout=0.2)
        except subprocess.TimeoutExpired as exc:
            timed_out = [str(exc), exc.timeout]
        during_timeout = ticks[0] - before
        code = p.wait()
        print(json.dumps({"timed_out": timed_out, "during_timeout": during_timeout,
                          "during_wait": ticks[0] - before, "code": code, "poll": p.poll()}))
        """,
    )
    assert out["timed_out"] == ["Command '['sleep', '0.6']' timed out after 0.2 seconds", 0.2]
    assert out["during_timeout"] >= 2
    assert out["during_wait"] >= 7  # ~12 ticks in 0.6 s
    assert out["code"] == 0 and out["poll"] == 0


@both
def test_several_tasks_wait_for_the_same_child(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess
        p = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 5"])
        waiters = [corun.spawn(p.wait) for _ in range(3)]
        corun.joinall(waiters, raise_error=True)
        print(json.dumps([w.value for w in waiters] + [p.returncode]))
        """,
    )
    assert out == [5, 5, 5, 5]


@both
def test_communicate_moves_8_mb_each_way(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, subprocess, time
        data = os.urandom(8 * 1024 * 1024)
        p = subprocess.Popen(["sh", "-c", "cat; echo done >&2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        before = ticks[0]
        t0 = time.perf_counter()
        out, err = p.communicate(data, timeout=20)
        print(json.dumps({"same": out == data, "err": err.decode(), "code": p.returncode,
                          "elapsed": time.perf_counter() - t0}))
        """,
    )
    assert out["same"] and out["err"] == "done\n" and out["code"] == 0
    assert out["elapsed"] < 10


@both
def test_communicate_in_text_mode(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess
        text = "".join(f"line {i} \\u00e9\\r\\n" for i in range(20000))
        p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, encoding="utf-8")
        out, err = p.communicate(text)
        print(json.dumps({"same": out == text.replace("\\r\\n", "\\n"), "err": err,
                          "type": type(out).__name__}))
        """,
    )
    assert out == {"same": True, "err": None, "type": "str"}


@both
def test_run_with_timeout_kills_and_raises(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, subprocess, time
        t0 = time.perf_counter()
        try:
            subprocess.run(["sh", "-c", "echo started; exec sleep 10"], timeout=0.5, capture_output=True)
        except subprocess.TimeoutExpired as exc:
            caught = [type(exc).__name__, exc.timeout, exc.output.decode(), exc.cmd[0]]
        elapsed = time.perf_counter() - t0
        try:
            os.waitpid(-1, os.WNOHANG)
            left = "a child is left"
        except ChildProcessError:
            left = "no child left"  # killed and reaped
        print(json.dumps({"caught": caught, "elapsed": elapsed, "left": left, "ticks": ticks[0]}))
        """,
    )
    assert out["caught"] == ["TimeoutExpired", 0.5, "started\n", "sh"]
    assert out["elapsed"] < 3
    assert out["left"] == "no child left"
    assert out["ticks"] >= 4


@both
def test_errors_and_return_codes_are_the_stdlibs(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess
        res = {}
        try:
            subprocess.check_output(["sh", "-c", "echo out; echo err >&2; exit 3"], stderr=subprocess.PIPE)
        except subprocess.CalledProcessError as exc:
            res["check_output"] = [exc.returncode, exc.output.decode(), exc.stderr.decode(), str(exc)]
        try:
            subprocess.check_call(["false"])
        except subprocess.CalledProcessError as exc:
            res["check_call"] = exc.returncode
        res["call"] = subprocess.call(["sh", "-c", "exit 7"])
        res["signal"] = subprocess.run(["sh", "-c", "kill -TERM $$"]).returncode
        res["output"] = subprocess.check_output(["echo", "hello"], text=True)
        res["getoutput"] = subprocess.getoutput("echo hi; exit 2")
        original = monkey.get_original("subprocess", "Popen")
        def outcome(cls, args, kwargs):
            try:
                cls(args, **kwargs).wait()
            except Exception as exc:
                return [type(exc).__name__, str(exc)]
            return "no error"
        bad = [
            (["/nonexistent/program"], {}),
            (["true"], {"cwd": "/nonexistent"}),
            (["true"], {"stdout": subprocess.STDOUT}),
            (["true"], {"bufsize": "x"}),
            (["true"], {"startupinfo": 1}),
            (["true"], {"text": True, "universal_newlines": False}),
            ([], {}),
        ]
        res["popen_errors"] = [[outcome(subprocess.Popen, a, k), outcome(original, a, k)] for a, k in bad]
        try:
            subprocess.run(["true"], input=b"x", stdin=subprocess.PIPE)
        except ValueError as exc:
            res["both_inputs"] = str(exc)
        p = subprocess.Popen(["true"])
        res["isinstance"] = isinstance(p, monkey.get_original("subprocess", "Popen"))
        p.wait()
        print(json.dumps(res))
        """,
    )
    assert out["check_output"] == [
        3,
        "out\n",
        "err\n",
        "Command '['sh', '-c', 'echo out; echo err >&2; exit 3']' returned non-zero exit status 3.",
    ]
    assert out["check_call"] == 1
    assert out["call"] == 7
    assert out["signal"] == -15
    assert out["output"] == "hello\n"
    assert out["getoutput"] == "hi"
    for patched, original in out["popen_errors"]:
        assert patched == original != "no error"
    assert out["both_inputs"] == "stdin and input arguments may not both be used."
    assert out["isinstance"] is True


@both
def test_reading_stdout_line_by_line_lets_other_tasks_run(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess
        p = subprocess.Popen(["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done"],
                             stdout=subprocess.PIPE, text=True)
        seen = []
        def read():
            for line in p.stdout:
                seen.append((line, ticks[0]))
        corun.spawn(read).get()
        p.wait()
        p.stdout.close()
        print(json.dumps({"lines": [line for line, _ in seen],
                          "ticks_between": seen[-1][1] - seen[0][1]}))
        """,
    )
    assert out["lines"] == [f"line {i}\n" for i in range(1, 6)]
    assert out["ticks_between"] >= 4  # 0.4 s between the first and last line


@both
@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
@pytest.mark.parametrize("bufsize", [0, -1, 1], ids=["unbuffered", "buffered", "line"])
def test_pipes_written_and_read_by_two_tasks(prologue: str, text: bool, bufsize: int) -> None:
    # One task writes 1 MB into cat while another reads it back: a write that
    # blocked the thread once the pipe is full would never let the reader run.
    out = run(
        prologue,
        f"""
        import json, subprocess, warnings
        warnings.simplefilter("ignore")  # bufsize=1 in binary mode warns, as in the stdlib
        text = {text!r}
        p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             bufsize={bufsize}, text=text)
        line = ("x" * 1023 + "\\n") if text else (b"x" * 1023 + b"\\n")
        def write():
            for _ in range(1024):
                p.stdin.write(line)
            p.stdin.close()
        def read():
            return p.stdout.read()
        writer, reader = corun.spawn(write), corun.spawn(read)
        corun.joinall([writer, reader], raise_error=True)
        p.stdout.close()
        print(json.dumps({{"size": len(reader.value), "all": reader.value == line * 1024,
                          "code": p.wait(), "stdin": type(p.stdin).__name__}}))
        """,
    )
    assert out["size"] == 1024 * 1024 and out["all"] and out["code"] == 0
    assert out["stdin"] == ("TextIOWrapper" if text else ("PipeIO" if bufsize == 0 else "BufferedWriter"))


@both
def test_a_pipe_handed_to_another_child_is_blocking_for_it(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, subprocess, sys
        p1 = subprocess.Popen(["sh", "-c", "echo b; echo a; echo c"], stdout=subprocess.PIPE)
        p2 = subprocess.Popen(
            [sys.executable, "-c",
             "import os, sys; print(os.get_blocking(0)); print(''.join(sorted(sys.stdin)), end='')"],
            stdin=p1.stdout, stdout=subprocess.PIPE, text=True)
        p1.stdout.close()
        out, _ = p2.communicate(timeout=20)
        print(json.dumps({"out": out, "codes": [p1.wait(), p2.returncode]}))
        """,
    )
    assert out == {"out": "True\na\nb\nc\n", "codes": [0, 0]}


@both
def test_no_fd_leak_over_100_runs(prologue: str) -> None:
    out = run(
        prologue,
        """
        import json, os, subprocess
        def count():
            return len(os.listdir("/proc/self/fd"))
        subprocess.run(["true"], capture_output=True)  # first-use fds (the hub's) opened here
        before = count()
        for i in range(100):
            if i % 2:
                subprocess.run(["echo", "x"], capture_output=True, input=b"", timeout=10)
            else:
                with subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as p:
                    p.stdin.write(b"abc")
                    p.stdin.close()
                    p.stdout.read()
        print(json.dumps({"before": before, "after": count()}))
        """,
        timeout=60,
    )
    assert out["after"] == out["before"]


@both
def test_without_pidfd_children_are_awaited_through_sigchld(prologue: str) -> None:
    # As on kernels before 5.3, or in sandboxes that refuse pidfd_open.
    out = run(
        prologue,
        """
        import json, signal, subprocess, time
        import corun.patches.os as coos
        coos._pidfd_works = False
        t0 = time.perf_counter()
        jobs = [corun.spawn(lambda: subprocess.run(["sleep", "0.5"]).returncode) for _ in range(10)]
        corun.joinall(jobs, raise_error=True)
        elapsed = time.perf_counter() - t0
        p = subprocess.Popen(["sleep", "5"])
        try:
            p.wait(0.2)
        except subprocess.TimeoutExpired:
            timed_out = True
        p.kill()
        print(json.dumps({"elapsed": elapsed, "codes": [j.value for j in jobs], "timed_out": timed_out,
                          "killed": p.wait(), "sigchld": str(signal.getsignal(signal.SIGCHLD))}))
        """,
    )
    assert out["codes"] == [0] * 10
    assert out["elapsed"] < 2.5  # side by side, not 5 s
    assert out["timed_out"] and out["killed"] == -9
    assert out["sigchld"] in {"Handlers.SIG_DFL", "0"}  # listening stopped with the last wait


def test_subprocess_twin_without_patching_select_uses_a_cooperative_selector() -> None:
    out = run(
        ALONE,
        """
        import json, select, selectors, subprocess
        print(json.dumps({"popen_selector": subprocess._PopenSelector.__module__,
                          "select_patched": monkey.is_module_patched("select")}))
        """,
    )
    assert out == {"popen_selector": "corun.patches.selectors", "select_patched": False}


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_a_real_thread_waits_for_its_own_children(pidfd: bool) -> None:
    # subprocess alone: threading is not patched, so this is an OS thread with
    # a hub of its own; without pidfds it cannot install a SIGCHLD handler
    # (only the main thread can) and looks for its children on a back-off.
    out = run(
        ALONE,
        f"""
        import json, subprocess, threading, time
        import corun.patches.os as coos
        coos._pidfd_works = {pidfd!r}
        result = {{}}
        def in_thread():
            t0 = time.perf_counter()
            procs = [subprocess.Popen(["sh", "-c", f"sleep 0.3; exit {{i}}"]) for i in range(3)]
            waits = [corun.spawn(p.wait) for p in procs]
            corun.joinall(waits, raise_error=True)
            result["codes"] = [w.value for w in waits]
            result["elapsed"] = time.perf_counter() - t0
        thread = threading.Thread(target=in_thread)
        thread.start()
        before = ticks[0]
        while thread.is_alive():
            corun.sleep(0.01)
        print(json.dumps({{**result, "ticks": ticks[0] - before}}))
        """,
    )
    assert out["codes"] == [0, 1, 2]
    assert out["elapsed"] < 1.2
    assert out["ticks"] >= 4


def test_os_read_on_a_pipes_fileno_waits_as_on_a_blocking_pipe() -> None:
    # corun made the parent's end non-blocking; code that reads the fd itself
    # expects it to block, and with the os area patched gets the child's line,
    # not BlockingIOError.
    out = run(
        ALL,
        """
        import json, os, subprocess, sys
        late = "import time; time.sleep(0.3); print('late', flush=True)"
        p = subprocess.Popen([sys.executable, "-c", late], stdout=subprocess.PIPE)
        before = ticks[0]
        try:
            got = os.read(p.stdout.fileno(), 100).decode()
        except BlockingIOError as exc:
            got = repr(exc)
        ticked = ticks[0] - before
        p.wait()
        p.stdout.close()
        print(json.dumps({"got": got, "ticked": ticked}))
        """,
    )
    assert out["got"] == "late\n"
    assert out["ticked"] >= 5
