"""corun.gunicorn's workers under a real gunicorn master, started as a subprocess on 127.0.0.1.

Each test starts ``python -m gunicorn -k <worker>`` on a free port with an
application from examples/ or a small one written for the test, talks to it
with http.client and raw sockets, and stops it.  Application code never
mentions corun: its ``time.sleep`` only suspends its own task because the
worker patched the process before the application was imported.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import simple_websocket
import trustme

from .conftest import PipeLines, process_group
from .test_wsgi import WS_APP

gunicorn = pytest.importorskip("gunicorn")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WORKERS = ["corun.gunicorn.Worker", "corun.gunicorn.WSGIWorker"]

pytestmark = pytest.mark.timeout(30)

# A plain WSGI application with the endpoints the tests need.  It imports
# ssl names at import time, which only an early patch can make cooperative.
TEST_APP = """
import json
import os
import sys
import time
from ssl import SSLContext, SSLSocket

IMPORTED_IN = os.getpid()
sys.stdout.write(f"application imported in {IMPORTED_IN}\\n")
sys.stdout.flush()
SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "2"))
running = 0
most_running = 0


def app(environ, start_response):
    global running, most_running
    path = environ["PATH_INFO"]
    if path == "/slow":
        running += 1
        most_running = max(most_running, running)
        # One write: two workers' lines cannot interleave in the shared pipe, as
        # print()'s separate writes of the text and the newline can.
        sys.stdout.write("slow request started\\n")
        sys.stdout.flush()
        try:
            time.sleep(SLOW_SECONDS)
        finally:
            running -= 1
        body = {"slept": SLOW_SECONDS, "most_running": most_running, "pid": os.getpid()}
    elif path == "/spin":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # holds the hub: no task runs, not even the heartbeat
            pass
        body = {}
    elif path == "/ssl":
        from corun import monkey

        body = {
            "imported_in": IMPORTED_IN,
            "pid": os.getpid(),
            "ssl_patched": monkey.is_module_patched("ssl"),
            "SSLSocket": SSLSocket.__module__,
            "SSLContext.sslsocket_class": SSLContext.sslsocket_class.__module__,
        }
    else:
        body = {"pid": os.getpid()}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """A gunicorn master running in a subprocess, and ways to talk to it."""

    def __init__(
        self, proc: subprocess.Popen[str], port: int, log: Path, tls: ssl.SSLContext | None = None
    ) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.tls = tls  # the client side's context when gunicorn serves TLS
        self.stdout = PipeLines(proc.stdout)

    def connection(self, timeout: float = 15) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, timeout: float = 15) -> tuple[int, bytes]:
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def get_json(self, path: str, timeout: float = 15) -> dict:
        status, body = self.get(path, timeout)
        assert status == 200, body
        return json.loads(body)

    def wait_for_line(self, text: str, timeout: float = 10) -> str:
        """Wait until the application printed a line with ``text`` on gunicorn's stdout; return it."""
        try:
            return self.stdout.wait_for(text, timeout)
        except TimeoutError:
            raise AssertionError(f"the application never printed {text!r}\n{self.log.read_text()}") from None
        except EOFError:
            raise AssertionError(f"gunicorn closed its stdout\n{self.log.read_text()}") from None


def _gunicorn_flags() -> list[str]:
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    # Newer gunicorns open a control socket at a fixed path shared by all of them.
    return ["--no-control-socket"] if "control_socket_disable" in names else []


@contextlib.contextmanager
def run_gunicorn(
    tmp_path: Path,
    worker: str,
    *options: str,
    app: str = "test_app:app",
    slow: float = 2.0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Gunicorn]:
    """Start gunicorn with ``worker`` on a free port; yield once a worker answers; stop it after."""
    (tmp_path / "test_app.py").write_text(TEST_APP)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path), str(EXAMPLES), env.get("PYTHONPATH", "")])
    env["SLOW_SECONDS"] = str(slow)
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / f"gunicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        worker,
        "-b",
        f"127.0.0.1:{port}",
        *_gunicorn_flags(),
        *options,
        app,
    ]
    pipes = {"stdout": subprocess.PIPE, "text": True, "env": env, "cwd": tmp_path}
    # In a process group of its own: workers left by a master that did not stop are killed with it.
    with open(log, "w") as stderr, process_group(command, stderr=stderr, **pipes) as proc:
        server = Gunicorn(proc, port, log, tls)
        try:
            deadline = time.monotonic() + 15
            while True:
                assert proc.poll() is None, f"gunicorn exited with {proc.returncode}:\n{log.read_text()}"
                try:
                    if server.get("/fast", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"gunicorn did not answer in time:\n{log.read_text()}"
                time.sleep(0.1)
            yield server
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # quick shutdown; what is left after 10 s is killed
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)


class Request(threading.Thread):
    """One GET in a thread of the test process; ``done_at`` is when its response was read."""

    def __init__(self, server: Gunicorn, path: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.path = path
        self.status = 0
        self.body = b""
        self.done_at = 0.0
        self.error: BaseException | None = None
        self.sent = threading.Event()
        self.start()

    def run(self) -> None:
        conn = self.server.connection()
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            self.sent.set()
            response = conn.getresponse()
            self.status, self.body = response.status, response.read()
        except BaseException as exc:
            self.error = exc
        finally:
            conn.close()
        self.done_at = time.monotonic()

    def result(self) -> tuple[int, bytes]:
        self.join(20)
        assert not self.is_alive(), f"GET {self.path} did not finish"
        if self.error is not None:
            raise self.error
        return self.status, self.body


@pytest.mark.parametrize("worker", WORKERS)
def test_flask_slow_and_fast_answered_concurrently(tmp_path: Path, worker: str) -> None:
    # The example's Flask application, as in examples/slow_fast_demo.py, with a 2 s /slow.
    with run_gunicorn(tmp_path, worker, app="slow_fast_app:app", slow=2.0) as server:
        started = time.monotonic()
        slow = Request(server, "/slow")
        # Sent before /fast's connection is made: a server taking one request at
        # a time would take /slow first and keep /fast waiting for 2 s.
        assert slow.sent.wait(10)
        fast_times = []
        for _ in range(3):
            sent = time.monotonic()
            status, body = server.get("/fast")
            fast_times.append(time.monotonic() - sent)
            assert (status, body) == (200, b"fast: answered at once\n")
        fast_done = time.monotonic()
        assert slow.result() == (200, b"slow: slept 2 s\n")
        assert max(fast_times) < 1.0
        # /fast was answered three times while /slow was still sleeping.
        assert fast_done < slow.done_at
        assert slow.done_at - started >= 1.9


@pytest.mark.parametrize("worker", WORKERS)
def test_keepalive_reuses_the_connection_then_closes_it_when_idle(tmp_path: Path, worker: str) -> None:
    with run_gunicorn(tmp_path, worker, "--keep-alive", "1") as server:
        conn = server.connection()
        conn.connect()
        sock = conn.sock
        assert sock is not None
        local = sock.getsockname()
        pids = set()
        for _ in range(3):
            conn.request("GET", "/pid")
            response = conn.getresponse()
            assert response.status == 200
            assert (response.getheader("Connection") or "").lower() != "close"
            pids.add(json.loads(response.read())["pid"])
            # The same connection carried each one (http.client reconnects after a close).
            assert conn.sock is sock and sock.getsockname() == local
        assert len(pids) == 1
        # Left idle, the connection is closed by the server after about a second.
        idle_since = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(1) == b""
        idle = time.monotonic() - idle_since
        assert 0.5 < idle < 5
        conn.close()


@pytest.mark.parametrize("worker", WORKERS)
def test_tls_with_certfile_and_keyfile(tmp_path: Path, worker: str) -> None:
    # gunicorn's own TLS options; the handshake runs in each connection's task,
    # so a slow TLS request does not hold up a fast one.
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    options = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with run_gunicorn(tmp_path, worker, *options, tls=client, slow=3.0) as server:
        slow = Request(server, "/slow")
        server.wait_for_line("slow request started")
        sleeping_since = time.monotonic()
        assert server.get_json("/pid")["pid"] > 0
        fast_done = time.monotonic()
        status, body = slow.result()
        assert status == 200 and json.loads(body)["slept"] == 3.0
        # Answered while /slow slept; taken one at a time, it would have waited 3 s.
        assert fast_done - sleeping_since < 1.5
        assert fast_done < slow.done_at
        # Plain HTTP on the TLS port gets no HTTP answer.
        with pytest.raises((http.client.HTTPException, OSError)):
            plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                plain.request("GET", "/pid")
                plain.getresponse().read()
            finally:
                plain.close()


@pytest.mark.parametrize("worker", WORKERS)
def test_max_requests_restarts_the_worker(tmp_path: Path, worker: str) -> None:
    with run_gunicorn(tmp_path, worker, "--max-requests", "4") as server:
        # The readiness check was the first request; three more end this worker.
        first = [server.get_json("/pid")["pid"] for _ in range(3)]
        assert len(set(first)) == 1
        # The next connection waits in the backlog until the master started a
        # new worker, which imports the application first: slow on a loaded machine.
        after = server.get_json("/pid", timeout=20)["pid"]
        assert after != first[0]
        assert server.get_json("/pid")["pid"] == after
        with pytest.raises(ProcessLookupError):
            os.kill(first[0], 0)  # the old worker exited (and the master reaped it)


@pytest.mark.parametrize("worker", WORKERS)
def test_a_worker_that_ends_at_once_is_replaced(tmp_path: Path, worker: str) -> None:
    # With --max-requests 1 each worker ends after one request, often while
    # the master, which patched itself, still sleeps after forking it.  Its
    # SIGCHLD then arrives while the master's hub runs, and the master next
    # waits on a queue.SimpleQueue made before patching: the handler must run
    # before that wait, or the worker is never reaped nor replaced.
    with run_gunicorn(tmp_path, worker, "--max-requests", "1") as server:
        pids = [server.get_json("/pid", timeout=20)["pid"] for _ in range(20)]
    assert len(set(pids)) == 20, pids


@pytest.mark.parametrize("worker", WORKERS)
def test_sigterm_stops_accepting_and_lets_the_request_in_flight_finish(tmp_path: Path, worker: str) -> None:
    with run_gunicorn(tmp_path, worker, "--graceful-timeout", "10", slow=4.0) as server:
        slow = Request(server, "/slow")
        server.wait_for_line("slow request started")
        server.proc.send_signal(signal.SIGTERM)
        # New connections are refused soon after, while /slow is still sleeping (4 s).
        deadline = time.monotonic() + 2.5
        while True:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    pass
            except ConnectionRefusedError:
                break
            except ConnectionResetError:
                pass  # queued on the listener as it closed: the next try finds it gone
            assert time.monotonic() < deadline, "still accepting after SIGTERM"
            time.sleep(0.05)
        assert slow.is_alive()
        status, body = slow.result()
        assert status == 200 and json.loads(body)["slept"] == 4.0
        assert server.proc.wait(timeout=10) == 0


def test_graceful_timeout_ends_requests_that_take_too_long(tmp_path: Path) -> None:
    with run_gunicorn(tmp_path, WORKERS[0], "--graceful-timeout", "1", slow=10.0) as server:
        slow = Request(server, "/slow")
        server.wait_for_line("slow request started")
        stop_sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=8) == 0
        assert time.monotonic() - stop_sent < 6  # not the 10 s the request wanted
        slow.join(5)
        assert slow.error is not None  # the connection was dropped, no half answer


def test_preload_imports_the_application_after_patching(tmp_path: Path) -> None:
    with run_gunicorn(tmp_path, WORKERS[0], "--preload") as server:
        info = server.get_json("/ssl")
    # Imported once, in the master, before the fork...
    assert info["imported_in"] != info["pid"]
    assert info["imported_in"] == server.proc.pid
    # ...and still the `from ssl import ...` names it captured are the cooperative ones.
    assert info["ssl_patched"] is True
    assert info["SSLSocket"] == "corun.patches.ssl"
    assert info["SSLContext.sslsocket_class"] == "corun.patches.ssl"


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_connections_limits_concurrency(tmp_path: Path, worker: str) -> None:
    slow = 1.5
    with run_gunicorn(tmp_path, worker, "--worker-connections", "2", slow=slow) as server:
        started = time.monotonic()
        requests = [Request(server, "/slow") for _ in range(4)]
        results = [r.result() for r in requests]
        done = sorted(r.done_at - started for r in requests)
    assert all(status == 200 for status, _ in results)
    assert max(json.loads(body)["most_running"] for _, body in results) == 2
    # Two at a time: two waves, not four at once and not one after another.
    assert done[1] < 2 * slow - 0.2
    assert done[2] >= 2 * slow - 0.05
    assert done[3] < 4 * slow - 0.5


@pytest.mark.parametrize("worker", WORKERS)
def test_several_workers_share_the_listener(tmp_path: Path, worker: str) -> None:
    # Two workers, one connection each at a time: two slow requests at once
    # are served side by side, one by each worker.
    options = ("--workers", "2", "--worker-connections", "1")
    with run_gunicorn(tmp_path, worker, *options, slow=1.5) as server:
        # Both workers are up before the requests go: with one still starting,
        # the first would take both requests, one after the other.
        imported = {server.wait_for_line("application imported in") for _ in range(2)}
        assert len(imported) == 2, imported
        slow = [Request(server, "/slow") for _ in range(2)]
        server.wait_for_line("slow request started")
        server.wait_for_line("slow request started")
        both_running = time.monotonic()
        bodies = [json.loads(request.result()[1]) for request in slow]
    assert len({body["pid"] for body in bodies}) == 2, bodies
    assert all(body["most_running"] == 1 for body in bodies)
    # The second had started before either was answered: side by side.
    assert both_running < min(request.done_at for request in slow)


def test_timeout_replaces_a_worker_whose_hub_is_held(tmp_path: Path) -> None:
    with run_gunicorn(tmp_path, WORKERS[0], "--timeout", "2", slow=3.0) as server:
        # Sleeping longer than the timeout is fine: the heartbeat task goes on meanwhile.
        before = server.get_json("/pid")["pid"]
        assert server.get_json("/slow")["slept"] == 3.0
        assert server.get_json("/pid")["pid"] == before
        # Spinning holds the hub, the heartbeat stops, and the master replaces the worker.
        spun = time.monotonic()
        with pytest.raises((http.client.HTTPException, OSError)):
            server.get("/spin", timeout=15)
        assert time.monotonic() - spun < 10
        assert server.get_json("/pid")["pid"] != before


def test_wsgi_settings_follow_gunicorn_config() -> None:
    from gunicorn.config import Config

    from corun.gunicorn import _wsgi_settings
    from corun.wsgi import WSGISettings

    cfg = Config()
    cfg.set("keepalive", 7)
    cfg.set("limit_request_line", 1000)
    cfg.set("limit_request_fields", 20)
    cfg.set("limit_request_field_size", 500)
    settings = WSGISettings(**_wsgi_settings(cfg, None))
    assert settings.keepalive_timeout == 7.0
    assert settings.max_request_line == 1000
    assert settings.max_header_count == 20
    assert settings.max_header_size == 20 * 500
    assert settings.access_log is None  # gunicorn logs no access by default

    # 0 means "as much as gunicorn allows" for the limits, and no keep-alive.
    for name in ("keepalive", "limit_request_line", "limit_request_fields", "limit_request_field_size"):
        cfg.set(name, 0)
    settings = WSGISettings(**_wsgi_settings(cfg, None))
    assert settings.keepalive_timeout == WSGISettings.timeout
    assert settings.max_request_line == 1 << 20
    assert settings.max_header_count == 32768
    assert settings.max_header_size == 32768 * 8190


@pytest.mark.parametrize("worker", WORKERS)
def test_a_websocket_round_trip_through_simple_websocket(tmp_path: Path, worker: str) -> None:
    # The WSGI application of corun.wsgi's own WebSocket tests, under gunicorn's master.  gunicorn's
    # own request code (Worker) takes a connection as handed over only when the application raises
    # StopIteration (Flask-Sock's way); returning [] there makes it try to answer (an error logged).
    paths = ["/ws-stop"] if worker == "corun.gunicorn.Worker" else ["/ws", "/ws-stop"]
    (tmp_path / "ws_app.py").write_text(WS_APP)
    with run_gunicorn(tmp_path, worker, app="ws_app:app") as server:
        clients = [simple_websocket.Client.connect(f"ws://127.0.0.1:{server.port}{path}") for path in paths]
        for n, client in enumerate(clients):
            client.send(f"hello {n}")
        for n, client in enumerate(clients):
            assert client.receive(timeout=5) == f"echo hello {n}"
        assert server.get("/plain") == (200, b"plain /plain -")  # answered while both are open
        for client in clients:
            client.send("bye")
            with pytest.raises(simple_websocket.ConnectionClosed):
                client.receive(timeout=5)
            assert (client.close_reason, client.close_message) == (1000, "bye")
        assert server.get("/again") == (200, b"plain /again -")
    assert "Traceback" not in server.log.read_text()
