"""An unmodified ``socketserver.ThreadingTCPServer`` under ``patch_all()``: a thread per connection.

The echo server pauses 0.2 s before each echo and every client sends three
messages, one after the other: 0.6 s per client. Served one client at a time,
500 clients would take five minutes; served with one thread (here: one task)
per connection, about a second.

The first test runs the server and 500 client threads in one patched process;
the second runs the server alone, patched, and drives it with 100 plain OS
threads from this process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import PipeLines, process_group
from .test_threading_programs import program_command, program_env, run_program

MESSAGES = 3
PAUSE = 0.2


@pytest.mark.parametrize("how", ["plain", "patch_all", "python -m corun"])
def test_server_and_500_client_threads_in_one_process(how: str, tmp_path: Path) -> None:
    result = run_program(how, "echo_load.py", "500", tmp_path=tmp_path)
    assert result["done"], result  # every client got every echo back
    assert result["completed"] == result["connected"] == 500
    # One client at a time: 500 x 0.6 s = 300 s.
    assert result["elapsed"] < 8, result
    assert result["peak"] >= 50, result  # connections the server held at once
    assert result["shutdown"] < 3, result
    # The server closed every connection it accepted, and its own socket.
    assert result["fds_after"] == result["fds_before"], result
    assert result["active_after"] == 1, result


# -- the server patched, the clients plain OS threads in this process ---------------

CLIENTS = 100


def echo_client(port: int, n: int) -> bool:
    """Connect, send MESSAGES lines, check each echo."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rwb") as stream:
        for m in range(MESSAGES):
            line = f"client {n} message {m}\n".encode()
            stream.write(line)
            stream.flush()
            if stream.readline() != line:
                return False
    return True


@pytest.mark.parametrize("how", ["plain", "patch_all", "python -m corun"])
def test_server_process_and_100_plain_client_threads(how: str, tmp_path: Path) -> None:
    command = program_command(how, "echo_server.py", tmp_path)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with process_group(command, cwd=tmp_path, env=program_env(), **pipes) as server:
        lines = PipeLines(server.stdout)
        line = lines.readline(timeout=15)
        assert line.isdigit(), f"the server printed {line!r}, not its port"
        port = int(line)

        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            echoed = list(pool.map(lambda n: echo_client(port, n), range(CLIENTS)))
        elapsed = time.perf_counter() - start

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"shutdown\n")
        stdout, stderr = server.communicate(timeout=10)
        stdout = lines.take_buffered() + stdout
    assert (server.returncode, stderr) == (0, ""), stderr
    assert echoed == [True] * CLIENTS
    # One client at a time: 100 x 0.6 s = 60 s.
    assert elapsed < 5
    stats = json.loads(stdout)
    assert stats["connected"] == CLIENTS + 1
    assert stats["peak"] >= 20  # connections the server held at once
    assert stats["threads"] == 1
