"""The unpatched end of the network benchmarks: echo and HTTP load generators, and an HTTP server.

``run.py`` starts this file once per sample of a network benchmark::

    python bench/peers.py LIBRARY BENCHMARK N

It starts the library's worker (``workloads.py``) as its child (or, for
the gunicorn row, gunicorn itself), plays the other end of the conversation
and prints one JSON line in the worker's format.  It imports none of the
libraries and patches nothing: it is plain Python (``selectors``,
``asyncio``), the same whichever library is measured, in a process of its own
so that it does not take the library's CPU.

Each sample also reports what share of one CPU this process used while the
library was measured (``peer_cpu_share``).  A peer well below 100% spent the
rest waiting for the library, so the library, not the peer, set the pace.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from workloads import BACKLOG, BENCHMARKS, ECHO_SIZE, HTTP_BODY

__all__ = ["ECHO_CLIENTS", "HTTP_CLIENTS", "echo_load", "http_load", "main", "serve_http"]

HERE = Path(__file__).resolve().parent
WORKER = HERE / "workloads.py"

ECHO_CLIENTS = 100
HTTP_CLIENTS = 50
# How long a server may take to answer its first request (gunicorn boots a worker first).
READY_TIMEOUT = 30.0

# A sample, or the worker's exit status when it failed (its stderr is ours).
Outcome = tuple[int, dict[str, Any] | None]


def _start_worker(lib: str, key: str, n: int, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), lib, key, str(n), "wall", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _cpu_seconds_of(pid: int) -> float | None:
    """CPU time (user + system) used so far by process ``pid``; None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name, in parentheses, may itself hold spaces and parentheses;
    # utime and stime are the 12th and 13th fields after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds_of(pid: int) -> float | None:
    """CPU time used so far by process ``pid`` and its children (gunicorn's master and its worker)."""
    own = _cpu_seconds_of(pid)
    if own is None:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # ended meanwhile
        # The parent's pid is the 2nd field after the command name.
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            own += _cpu_seconds_of(int(entry)) or 0.0
    return own


def _share(used: float | None, before: float | None, seconds: float) -> float | None:
    return None if used is None or before is None else (used - before) / seconds


def _worker_sample(
    lib: str, key: str, n: int, load: dict[str, Any], info: dict[str, Any], per_cpu: bool = False
) -> dict[str, Any]:
    """The sample of a server measured here, in the worker's format.

    Its rate is per wall-clock second, or with ``per_cpu`` per second of the
    server's CPU time where that was read.
    """
    seconds, lib_share = load["seconds"], load["lib_cpu_share"]
    per_cpu = per_cpu and bool(lib_share)
    return {
        "lib": lib,
        "bench": key,
        "n": n,
        "value": load["count"] / (lib_share * seconds if per_cpu else seconds),
        "metrics": load.get("metrics", {}),
        "clock": "cpu" if per_cpu else "wall",
        "wall_seconds": seconds,
        "cpu_seconds": None if lib_share is None else lib_share * seconds,
        "peer_cpu_share": load["peer_cpu_share"],
        "version": info["version"],
        "greenlet": info["greenlet"],
        "python": platform.python_version(),
    }


def _serve_and_load(
    lib: str,
    key: str,
    n: int,
    load: Callable[[int, float, float, int], dict[str, Any]],
    per_cpu: bool = False,
) -> Outcome:
    """Start the worker's server, run ``load(port, warmup, window, pid)`` against it, end the worker."""
    window = n / 1000
    worker = _start_worker(lib, key, n, 0)
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if not line:
            return worker.wait(), None
        info = json.loads(line)
        result = load(info["port"], window / 6, window, worker.pid)
    finally:
        worker.kill()
        worker.wait()
    return 0, _worker_sample(lib, key, n, result, info, per_cpu)


# -- echo: drive the library's server and measure it --------------------------


def _allow_open_files(count: int) -> None:
    """Raise this process's limit on open files to at least ``count`` (its children inherit it).

    Raises:
        OSError: the hard limit is lower.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            raise OSError(
                f"{count} open files are needed, and this process may open only {hard} (ulimit -Hn)"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def echo_load(
    port: int, warmup: float, window: float, server_pid: int, clients: int = ECHO_CLIENTS
) -> dict[str, Any]:
    """Ping-pong ECHO_SIZE-byte messages on ``clients`` connections; count the replies in ``window``.

    Each client keeps exactly one message in flight: it sends the next one as
    soon as the whole reply to the last one is back.  Counting starts once
    ``warmup`` seconds have passed.

    Returns:
        ``messages`` replies and ``seconds`` taken in the window, and the CPU
        shares of this process and of the server meanwhile.

    Raises:
        ConnectionError: the server closed a connection or echoed too much.
    """
    message = b"x" * ECHO_SIZE
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    selector = selectors.DefaultSelector()
    for sock in conns:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        # The data: how many bytes of the reply are still due.
        selector.register(sock, selectors.EVENT_READ, [ECHO_SIZE])
    select, clock = selector.select, time.perf_counter
    replies = 0
    start: tuple[float, int, float, float | None] | None = None
    began = clock()
    for sock in conns:
        sock.send(message)
    try:
        while True:
            for key, _ in select(1.0):
                sock = key.fileobj  # type: ignore[assignment]
                data = sock.recv(4096)
                due = key.data
                due[0] -= len(data)
                if due[0] > 0:
                    if not data:
                        raise ConnectionError("the echo server closed a connection")
                    continue
                if due[0] < 0:
                    raise ConnectionError("the echo server sent more than it was sent")
                due[0] = ECHO_SIZE
                replies += 1
                # One message of 64 bytes in an empty send buffer: it fits.
                sock.send(message)
            now = clock()
            if start is None:
                if now - began >= warmup:
                    start = (now, replies, time.process_time(), _cpu_seconds_of(server_pid))
            elif now - start[0] >= window:
                break
        cpu, server_cpu = time.process_time(), _cpu_seconds_of(server_pid)
    finally:
        selector.close()
        for sock in conns:
            sock.close()
    seconds = now - start[0]
    messages = replies - start[1]
    if not messages:
        raise ConnectionError("the echo server answered nothing in the measured time")
    return {
        "count": messages,
        "seconds": seconds,
        "peer_cpu_share": (cpu - start[2]) / seconds,
        "lib_cpu_share": _share(server_cpu, start[3], seconds),
    }


def _echo(lib: str, key: str, n: int) -> Outcome:
    clients = next(b for b in BENCHMARKS if b.key == key).clients or ECHO_CLIENTS
    # Both ends hold every connection, and the worker inherits this limit.
    _allow_open_files(clients + 256)
    return _serve_and_load(lib, key, n, functools.partial(echo_load, clients=clients), per_cpu=True)


# -- http load: drive the library's WSGI server and measure it ---------------------

_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _content_length(head: bytes) -> int:
    """The Content-Length of a response head; raises ConnectionError for anything else."""
    status, _, fields = head.partition(b"\r\n")
    if not status.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(f"unexpected response: {status!r}")
    for field in fields.split(b"\r\n"):
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ConnectionError(f"a response without Content-Length: {head!r}")


def _wait_until_ready(port: int) -> None:
    """Return once the server answers a request (it may still be starting), closing the connection."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=READY_TIMEOUT) as sock:
                sock.sendall(_REQUEST)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = sock.recv(4096)
                    if not data:
                        raise ConnectionResetError("closed before answering")
                    head += data
                _content_length(head[: head.index(b"\r\n\r\n")])
                return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_load(port: int, warmup: float, window: float, server_pid: int) -> dict[str, Any]:
    """GET / on HTTP_CLIENTS keep-alive connections; count the answers in ``window``, time each one.

    Each client keeps exactly one request in flight, sent in one piece, and
    sends the next as soon as the whole answer to the last one is back; a
    request's latency runs from its send to the last byte of its answer.
    Counting starts once the server answered a first request and ``warmup``
    seconds have passed since.

    Returns:
        ``count`` answers and ``seconds`` taken in the window, their p50 and
        p99 latencies in ``metrics`` (milliseconds), and the CPU shares of this
        process and of the server (with its child processes) meanwhile.

    Raises:
        ConnectionError: the server closed a connection or answered unexpectedly.
    """
    _wait_until_ready(port)
    body_size = len(HTTP_BODY)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(HTTP_CLIENTS)]
    selector = selectors.DefaultSelector()
    clock = time.perf_counter
    for sock in clients:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        # The data: [bytes of the answer received so far, when the request was sent].
        selector.register(sock, selectors.EVENT_READ, [b"", 0.0])
    select = selector.select
    answers = 0
    latencies: list[float] = []
    record = latencies.append
    measuring = False
    start: tuple[float, int, float, float | None] | None = None
    began = clock()
    for key in selector.get_map().values():
        key.data[1] = clock()
        key.fileobj.send(_REQUEST)  # type: ignore[union-attr]
    try:
        while True:
            for key, _ in select(1.0):
                sock = key.fileobj  # type: ignore[assignment]
                state = key.data
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed a keep-alive connection")
                buffer = state[0] + data if state[0] else data
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    state[0] = buffer
                    continue
                size = end + 4 + _content_length(buffer[:end])
                if len(buffer) < size:
                    state[0] = buffer
                    continue
                if len(buffer) > size or buffer[-body_size:] != HTTP_BODY:
                    raise ConnectionError(f"unexpected answer: {buffer!r}")
                now = clock()
                if measuring:
                    record(now - state[1])
                answers += 1
                state[0] = b""
                state[1] = now
                # One short request in an empty send buffer: it fits.
                sock.send(_REQUEST)
            now = clock()
            if start is None:
                if now - began >= warmup:
                    start = (now, answers, time.process_time(), _tree_cpu_seconds_of(server_pid))
                    measuring = True
            elif now - start[0] >= window:
                break
        cpu, server_cpu = time.process_time(), _tree_cpu_seconds_of(server_pid)
    finally:
        selector.close()
        for sock in clients:
            sock.close()
    seconds = now - start[0]
    count = answers - start[1]
    if not latencies:
        raise ConnectionError("the server answered nothing in the measured time")
    latencies.sort()
    return {
        "count": count,
        "seconds": seconds,
        "metrics": {
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        },
        "peer_cpu_share": (cpu - start[2]) / seconds,
        "lib_cpu_share": _share(server_cpu, start[3], seconds),
    }


def _http_load(lib: str, key: str, n: int) -> Outcome:
    return _serve_and_load(lib, key, n, http_load)


def _gunicorn_http_load(lib: str, key: str, n: int) -> Outcome:
    """Start ``gunicorn -k gevent`` with one worker on a socket bound here, and load it."""
    if lib != "gevent":
        raise ValueError(f"gunicorn's gevent worker is measured for gevent, not {lib}")
    window = n / 1000
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(BACKLOG)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gevent",
        "--workers",
        "1",
        "--worker-connections",
        "1000",
        "--bind",
        f"fd://{listener.fileno()}",
        "--log-level",
        "warning",
        "--chdir",
        str(HERE),
        "workloads:hello_app",
    ]
    # gunicorn 25.1 and later open a control socket at a fixed path by default,
    # shared with any other gunicorn of the user; none is needed here.
    version = tuple(int(part) for part in metadata.version("gunicorn").split(".")[:2] if part.isdigit())
    if version >= (25, 1):
        command.insert(-1, "--no-control-socket")
    # A session of its own, so that the master and its worker end together.
    server = subprocess.Popen(
        command, pass_fds=[listener.fileno()], start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        result = http_load(listener.getsockname()[1], window / 6, window, server.pid)
    finally:
        listener.close()
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    # The versions come from the installed metadata: this process imports neither.
    info = {"version": metadata.version("gevent"), "greenlet": metadata.version("greenlet")}
    sample = _worker_sample(lib, key, n, result, info)
    sample["gunicorn"] = metadata.version("gunicorn")
    return 0, sample


# -- http: answer the library's client -------------------------------------------

_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(HTTP_BODY)
) + HTTP_BODY
_NOT_IMPLEMENTED = b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Responder(asyncio.Protocol):
    """A minimal keep-alive HTTP/1.1 server: every GET (without a body) gets the same short reply.

    ``GET /mark`` also records the time and this process's CPU time, so that
    the CPU share between two marks can be worked out afterwards.
    """

    def __init__(self, marks: list[tuple[float, float]]) -> None:
        self.marks = marks
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            method, path, _ = buffer[:end].split(b" ", 2)
            buffer = buffer[end + 4 :]
            if method != b"GET":
                self.transport.write(_NOT_IMPLEMENTED)
                self.transport.close()
                return
            if path == b"/mark":
                self.marks.append((time.perf_counter(), time.process_time()))
            self.transport.write(_OK)
        self.buffer = buffer


async def serve_http(run_client: Callable[[int], Any]) -> tuple[Any, list[tuple[float, float]]]:
    """Serve HTTP on a free port of 127.0.0.1 while ``await run_client(port)`` runs.

    Returns:
        What the client returned, and the marks it left.
    """
    marks: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Responder(marks), "127.0.0.1", 0, backlog=1024)
    try:
        result = await run_client(server.sockets[0].getsockname()[1])
    finally:
        server.close()
    return result, marks


def _http(lib: str, key: str, n: int) -> Outcome:
    async def run_client(port: int) -> tuple[int, str]:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), lib, key, str(n), "wall", str(port), stdout=subprocess.PIPE
        )
        out, _ = await worker.communicate()
        assert worker.returncode is not None
        return worker.returncode, out.decode()

    (status, out), marks = asyncio.run(serve_http(run_client))
    lines = out.strip().splitlines()
    if status != 0 or not lines:
        return status or 1, None
    sample: dict[str, Any] = json.loads(lines[-1])
    # The last two marks bracket the measured run (the first two, the warm-up).
    if len(marks) >= 2:
        (wall0, cpu0), (wall1, cpu1) = marks[-2:]
        sample["peer_cpu_share"] = (cpu1 - cpu0) / (wall1 - wall0)
    return 0, sample


_ROLES: dict[str, Callable[[str, str, int], Outcome]] = {
    "echo-load": _echo,
    "http-load": _http_load,
    "gunicorn-http-load": _gunicorn_http_load,
    "http-server": _http,
}


def main(argv: list[str]) -> int:
    """Entry point: ``LIBRARY BENCHMARK N``; prints one JSON line, or exits with the worker's status."""
    lib, key, n = argv[0], argv[1], int(argv[2])
    bench = next(b for b in BENCHMARKS if b.key == key)
    if bench.peer is None:
        raise ValueError(f"{key} is not a network benchmark")
    status, sample = _ROLES[bench.peer](lib, key, n)
    if sample is not None:
        print(json.dumps(sample), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
