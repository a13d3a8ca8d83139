"""A real Redis server for the tests: the distribution's ``redis-server``, on a free loopback port.

Each run gets its own server in a temporary directory, with persistence off,
so nothing is read from or left on the machine, and the package's own service
(if the package started one) is never touched.  Tests that need Redis skip,
saying why, only when ``redis-server`` is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["DATABASES", "RedisServer", "running_redis"]

# Enough databases for each test to have one of its own.
DATABASES = 64


class RedisServer:
    """A running ``redis-server`` process: its address and how to reach one of its databases."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.directory = directory
        self._next_db = 0

    def url(self, db: int = 0) -> str:
        """``redis://`` URL of database ``db``."""
        return f"redis://{self.host}:{self.port}/{db}"

    def fresh_url(self) -> str:
        """URL of a database no other test of this run has used."""
        if self._next_db >= DATABASES:
            raise RuntimeError(f"all {DATABASES} Redis databases of this run are taken")
        db, self._next_db = self._next_db, self._next_db + 1
        return self.url(db)

    def command(self, *args: str) -> bytes:
        """Send one command over a new connection; return the raw reply line (RESP)."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(request.encode())
            return sock.recv(65536)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(server: RedisServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            log = (server.directory / "redis.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server exited with {server.process.returncode}:\n{log}")
        with contextlib.suppress(OSError):
            if server.command("PING").startswith(b"+PONG"):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"redis-server on port {server.port} did not answer PING within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_redis(timeout: float = 10) -> Iterator[RedisServer]:
    """Start a ``redis-server`` of our own for the ``with`` block; stop it and remove its files after.

    Calls ``pytest.skip`` when ``redis-server`` is not installed.
    """
    program = shutil.which("redis-server")
    if program is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        directory = Path(tmp)
        for _attempt in range(3):  # another process may take the free port before the server binds it
            port = _free_port()
            command = [
                program,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(directory),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--databases", str(DATABASES),
                "--logfile", str(directory / "redis.log"),
            ]  # fmt: skip
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            server = RedisServer(process, port, directory)
            try:
                _wait_until_ready(server, timeout)
                break
            except BaseException as exc:
                process.kill()
                process.wait()
                log = directory / "redis.log"
                in_use = log.exists() and "Address already in use" in log.read_text(errors="replace")
                if not (isinstance(exc, RuntimeError) and in_use):
                    raise
        else:
            raise RuntimeError("redis-server found no free port in three attempts")
        try:
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
