"""Servers the tests start for themselves from the distribution's packages: PostgreSQL.

A test module that needs one imports its fixture (``from tests.services import
postgres``).  The server runs in a temporary directory, on a free loopback
port, for the whole session, and is stopped at its end.  The tests are skipped,
saying why, only when the server programs are not installed
(``apt-get install postgresql`` on Debian; ``.ci/run`` does it as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Postgres", "find_postgres_programs", "postgres", "running_postgres"]

# The programs of one PostgreSQL installation the fixture runs.
_PROGRAMS = ("initdb", "postgres")


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL server: where to reach it, as whom."""

    host: str
    port: int
    user: str
    dbname: str

    def dsn(self, **extra: Any) -> str:
        """A libpq connection string for this server, with ``extra`` parameters added."""
        params = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname, **extra}
        return " ".join(f"{key}={value}" for key, value in params.items())


def find_postgres_programs() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: on PATH, else Debian's newest under /usr/lib."""
    found = [shutil.which(name) for name in _PROGRAMS]
    if all(found):
        directories = {Path(os.path.realpath(path)).parent for path in found if path}
        if len(directories) == 1:
            return directories.pop()
    # Debian keeps the server programs off PATH, one directory per major version.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2].split(".")[0])
    )
    for directory in reversed(candidates):
        if all(os.access(os.path.join(directory, name), os.X_OK) for name in _PROGRAMS):
            return Path(directory)
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Whom to run the server as: None if we are not root, else ``postgres`` or ``nobody``.

    PostgreSQL refuses to run as root; the distribution's package creates the
    ``postgres`` user, and ``nobody`` exists everywhere else.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, with neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(server: subprocess.Popen[bytes], data: Path, log: Path, timeout: float = 30) -> None:
    """Return once the server accepts connections, as ``pg_ctl -w`` decides: postmaster.pid says "ready"."""
    deadline = time.monotonic() + timeout
    pidfile = data / "postmaster.pid"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with status {server.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            lines = pidfile.read_text().splitlines()
            # The 8th line is the postmaster's status, "ready" once it accepts connections.
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL not ready within {timeout} s:\n{log.read_text()}")


@contextlib.contextmanager
def running_postgres(programs: Path) -> Iterator[Postgres]:
    """Run a throwaway PostgreSQL server from ``programs`` while the block runs."""
    user = _unprivileged_user()
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    top = Path(tempfile.mkdtemp(prefix="corun-postgres-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            os.chown(top, user.pw_uid, user.pw_gid)
        data, log = top / "data", top / "server.log"
        initdb = [str(programs / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run(
            [*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            cwd=top,
            env=env,
            **as_user,
        )
        port = _free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(top),
            # A throwaway server: durability costs time and buys nothing.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        command = [str(programs / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open(log, "wb") as log_file:
            server = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=top,
                env=env,
                start_new_session=True,
                **as_user,
            )
        _wait_until_ready(server, data, log)
        yield Postgres(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    finally:
        if server is not None:
            # SIGINT is the fast shutdown: open sessions are ended, then the server exits.
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole session; skipped only when its programs are not installed."""
    programs = find_postgres_programs()
    if programs is None:
        pytest.skip(
            "PostgreSQL server programs (initdb, postgres) are not installed: "
            "apt-get install postgresql (.ci/run does it when run as root)"
        )
    with running_postgres(programs) as server:
        yield server
