"""The cooperative ``open``: files over pipes, FIFOs and sockets wait in their task; others stay the stdlib's.

Every program runs in a fresh interpreter, patched with the os area alone or
with everything; a ticker task shows that the others kept running while one
waited on a file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from ..conftest import ROOT, PipeLines, process_group, run_json, run_process, ticker

ALONE = "from corun import monkey\nmonkey.patch_module('os'); monkey.patch_module('io')\n"
ALL = "from corun import monkey; monkey.patch_all()\n"

both = pytest.mark.parametrize("prologue", [ALONE, ALL], ids=["os-io", "patch_all"])

TICKER = ticker(0.02)


def run(prologue: str, body: str) -> Any:
    """Run ``body`` after ``prologue`` and the ticker; return the JSON it printed last."""
    return run_json(prologue + TICKER + textwrap.dedent(body))


@both
@pytest.mark.parametrize("way", ["os.fdopen text", "os.fdopen binary", "open(fd) unbuffered"])
def test_a_file_over_a_pipe_waits_in_its_task_only(prologue: str, way: str) -> None:
    # The writer is another process that writes 0.5 s later: while the read
    # waits, the ticker must go on (about 25 ticks).
    opening = {
        "os.fdopen text": "os.fdopen(r)",
        "os.fdopen binary": "os.fdopen(r, 'rb')",
        "open(fd) unbuffered": "open(r, 'rb', buffering=0)",
    }[way]
    out = run(
        prologue,
        f"""
        import json, os, subprocess, sys
        WRITE_LATER = "import os, sys, time; time.sleep(0.5); os.write(int(sys.argv[1]), b'report\\\\n')"
        r, w = os.pipe()
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE_LATER, str(w)], pass_fds=[w])
        os.close(w)
        f = {opening}
        before = ticks[0]
        data = f.read() if "unbuffered" not in {way!r} else f.readall()
        ticked = ticks[0] - before
        f.close()
        writer.wait()
        print(json.dumps({{"data": data if isinstance(data, str) else data.decode(), "ticked": ticked,
                           "raw": type(getattr(getattr(f, "buffer", f), "raw", f)).__name__}}))
        """,
    )
    assert out["data"] == "report\n"
    assert out["ticked"] >= 10, out
    assert out["raw"] == "PipeIO"


@both
def test_a_fifo_opened_by_path_and_a_large_write_through_it_do_not_block_the_thread(prologue: str) -> None:
    # 1 MB through a pipe whose reader is another task of the same thread: a
    # write that blocked the thread once the pipe is full would never end.
    out = run(
        prologue,
        """
        import json, os, tempfile
        path = os.path.join(tempfile.mkdtemp(), "fifo")
        os.mkfifo(path)
        chunk = b"x" * 1023 + b"\\n"
        def write():
            with open(path, "wb") as f:
                for _ in range(1024):
                    f.write(chunk)
        def read():
            with open(path, "rb") as f:
                return f.read()
        reader = corun.spawn(read)
        writer = corun.spawn(write)
        corun.joinall([reader, writer], raise_error=True)
        os.unlink(path)
        print(json.dumps({"size": len(reader.value), "same": reader.value == chunk * 1024}))
        """,
    )
    assert out["size"] == 1024 * 1024 and out["same"]


@both
def test_regular_files_and_settings_stay_the_stdlibs(prologue: str) -> None:
    out = run(
        prologue,
        """
        import io, json, os, tempfile
        path = os.path.join(tempfile.mkdtemp(), "file.txt")
        with open(path, "w", newline="") as f:
            f.write("a\\r\\nb\\n")
        res = {}
        with open(path) as f:
            res["regular"] = [type(f).__name__, type(f.buffer).__name__, type(f.buffer.raw).__name__]
        r, w = os.pipe()
        os.write(w, "é\\r\\nz".encode("latin-1"))
        os.close(w)
        with os.fdopen(r, "r", encoding="latin-1", newline="") as f:
            res["pipe"] = [f.read(), f.mode, f.name, f.encoding, type(f.buffer.raw).__name__]
        # An fd the program made non-blocking is expected to say "no data", not to wait.
        r, w = os.pipe()
        os.set_blocking(r, False)
        with os.fdopen(r, "rb", buffering=0) as f:
            res["nonblocking"] = [repr(f.read(10)), type(f).__name__]
        os.close(w)
        res["same open"] = open is io.open
        print(json.dumps(res))
        """,
    )
    assert out["regular"] == ["TextIOWrapper", "BufferedReader", "FileIO"]
    assert out["pipe"][:4] == ["é\r\nz", "r", out["pipe"][2], "latin-1"] and out["pipe"][4] == "PipeIO"
    assert isinstance(out["pipe"][2], int)
    assert out["nonblocking"] == ["None", "FileIO"]
    assert out["same open"] is True


def test_the_originals_are_recorded_and_the_interpreters_stdin_stays_intact() -> None:
    out = run_process(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import builtins, io, json, sys
                original_open, original_stdin = builtins.open, sys.stdin
                from corun import monkey
                monkey.patch_all()
                res = {
                    "patched": [builtins.open is not original_open, io.open is not original_open,
                                sys.stdin is not original_stdin],
                    "recorded": [monkey.get_original("builtins", "open") is original_open,
                                 monkey.get_original("io", "open") is original_open,
                                 monkey.get_original("sys", "stdin") is original_stdin],
                    "lines": [sys.stdin.readline(), sys.stdin.read()],
                    # The interpreter's own stdin was not taken apart.
                    "original": [original_stdin.closed, original_stdin.fileno(), original_stdin.name],
                }
                print(json.dumps(res))
                """
            ),
        ],
        timeout=30,
        input="one\ntwo\n",
        env=_env(),
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["patched"] == [True, True, True]
    assert res["recorded"] == [True, True, True]
    assert res["lines"] == ["one\n", "two\n"]
    assert res["original"] == [False, 0, "<stdin>"]


def test_a_piped_stdin_waits_in_the_main_task_only_under_the_runner() -> None:
    # The program says it is about to read; its stdin gets the lines 0.5 s
    # later.  Meanwhile a thread of the program keeps counting, which it
    # could not if reading stdin blocked the one OS thread.
    script = textwrap.dedent(
        """
        import sys, threading, time
        beats = []
        stop = threading.Event()
        def beat():
            while not stop.wait(0.02):
                beats.append(1)
        t = threading.Thread(target=beat)
        t.start()
        print("reading", flush=True)
        line = input()
        rest = sys.stdin.read()
        stop.set()
        t.join()
        print(repr(line), repr(rest), sys.stdin.name, len(beats) >= 10, type(sys.stdin.buffer.raw).__name__)
        """
    )
    command = [sys.executable, "-m", "corun", "-c", script]
    with process_group(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        lines = PipeLines(proc.stdout)
        assert lines.readline(timeout=30) == "reading"
        time.sleep(0.5)
        proc.stdin.write(b"first\r\nsecond\n")
        proc.stdin.close()
        result = lines.readline(timeout=30)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert result.split() == ["'first\\r'", "'second\\n'", "<stdin>", "True", "PipeIO"]


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env
