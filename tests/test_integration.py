"""Unmodified blocking programs made concurrent: stdlib and requests clients under patching.

Each program here is ordinary blocking network code (urllib, requests,
http.client, urllib3, xmlrpc, smtplib, a select() or selectors loop). The
one thing it adds is corun's gevent-style usage: its blocking function runs
in one task per call (``spawn_all`` below). Every program runs in a fresh
interpreter twice: after ``monkey.patch_all()``, and as a script file under
``python -m corun``.

The servers, on 127.0.0.1, answer each call after DELAY seconds. Twenty calls
made one after another would take 6 s; all of them finishing in under 2 s
proves the waits overlapped, and the servers count how many calls they held
at once. Each response is checked, not just timed.
"""

from __future__ import annotations

import json
import os
import re
import socketserver
import ssl
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from .conftest import ROOT, run_patched, run_process

DELAY = 0.3  # seconds every server takes to answer one call
CALLS = 20  # calls per program: 6 s one after another
LIMIT = 2.0  # seconds all CALLS may take together: well above DELAY, far below CALLS * DELAY
PEAK = 10  # calls a server must have held at once (all CALLS, when nothing else is slow)

# Put before every program: the one corun-specific piece, one task per call.
SPAWN_ALL = """\
import json
import time

import corun


def spawn_all(call, count):
    \"\"\"Run call(0) ... call(count - 1) in one task each; return (seconds, results in order).\"\"\"
    start = time.perf_counter()
    tasks = [corun.spawn(call, n) for n in range(count)]
    corun.joinall(tasks, raise_error=True)
    return time.perf_counter() - start, [task.get() for task in tasks]


def report(**results):
    print(json.dumps(results))
"""


# -- running a program both ways ----------------------------------------------------


Runner = Callable[..., dict[str, Any]]


@pytest.fixture(params=["patch_all", "python -m corun"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """Run a program's source with arguments in a fresh interpreter, patched; return what it reported."""

    def run_program(source: str, *args: str) -> dict[str, Any]:
        program = SPAWN_ALL + "\n" + textwrap.dedent(source)
        if request.param == "patch_all":
            proc = run_patched(program, *args, timeout=30)
        else:
            (tmp_path / "program.py").write_text(program)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
            env.setdefault("PYTHONFAULTHANDLER", "1")
            command = [sys.executable, "-m", "corun", "program.py", *args]
            proc = run_process(command, cwd=tmp_path, env=env, timeout=30)
        output = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        assert proc.returncode == 0, output
        assert proc.stderr == "", output
        result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
        return result

    return run_program


def assert_overlapped(elapsed: float, rounds: int = 1) -> None:
    """``rounds`` rounds of CALLS calls, each waiting DELAY, took about ``rounds * DELAY``."""
    assert rounds * DELAY - 0.05 <= elapsed < rounds * LIMIT, (
        f"{rounds * CALLS} calls took {elapsed:.2f} s; one after another they take {rounds * CALLS * DELAY} s"
    )


# -- the servers, in this (unpatched) process, one OS thread per connection --------


@dataclass
class Stats:
    """What a server saw: calls answered, most calls held at once, connections accepted."""

    calls: int = 0
    peak: int = 0
    connections: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self.calls += 1

    def connected(self) -> None:
        with self._lock:
            self.connections += 1


def page(n: int) -> str:
    """The body of ``/page/<n>``: different for every page."""
    return f"page {n}: " + "x" * (100 + 37 * n)


class SlowHandler(BaseHTTPRequestHandler):
    """``GET /page/<n>`` answered after DELAY; HTTP/1.1, so clients may keep connections open."""

    protocol_version = "HTTP/1.1"
    server: SlowHTTPServer

    def do_GET(self) -> None:
        match = re.fullmatch(r"/page/(\d+)", self.path)
        if match is None:
            self.send_error(404)
            return
        with self.server.stats.call():
            time.sleep(DELAY)
        body = page(int(match.group(1))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SlowHTTPServer(ThreadingHTTPServer):
    """The slow page server, plain or (with ``tls``) HTTPS."""

    daemon_threads = True
    request_queue_size = 128  # twenty clients connect at once

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), SlowHandler)
        self.tls = tls
        self.stats = Stats()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.stats.connected()
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake happens here, in the connection's own thread.
        with self.tls.wrap_socket(request, server_side=True) as tls_sock:
            super().finish_request(tls_sock, client_address)


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Run ``server`` in a thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test CA's certificate as a PEM file, for the programs to verify the server against."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def _http_server() -> Iterator[SlowHTTPServer]:
    server = SlowHTTPServer()
    with serving(server):
        yield server


@pytest.fixture(scope="module")
def _https_server(ca: trustme.CA) -> Iterator[SlowHTTPServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = SlowHTTPServer(context)
    with serving(server):
        yield server


@pytest.fixture
def http_server(_http_server: SlowHTTPServer) -> SlowHTTPServer:
    """The slow HTTP server, its statistics reset for this test."""
    _http_server.stats = Stats()
    return _http_server


@pytest.fixture
def https_server(_https_server: SlowHTTPServer) -> SlowHTTPServer:
    """The slow HTTPS server (certificate from the test CA), its statistics reset for this test."""
    _https_server.stats = Stats()
    return _https_server


def assert_pages(pages: list[str], server: SlowHTTPServer, rounds: int = 1) -> None:
    """Every page arrived whole, and the server held many requests at once."""
    assert pages == [page(n) for n in range(CALLS)] * rounds
    assert server.stats.calls == CALLS * rounds
    assert server.stats.peak >= PEAK


# -- HTTP clients ---------------------------------------------------------------------


def test_urllib_urlopen(run: Runner, http_server: SlowHTTPServer) -> None:
    result = run(
        """
        import sys
        import urllib.request

        base = sys.argv[1]

        def fetch(n):
            with urllib.request.urlopen(f"{base}/page/{n}", timeout=10) as response:
                return response.read().decode()

        elapsed, pages = spawn_all(fetch, 20)
        report(elapsed=elapsed, pages=pages)
        """,
        http_server.url,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], http_server)


def test_requests_get_with_a_new_connection_per_call(run: Runner, http_server: SlowHTTPServer) -> None:
    result = run(
        """
        import sys
        import requests

        base = sys.argv[1]

        def fetch(n):
            response = requests.get(f"{base}/page/{n}", timeout=10)
            response.raise_for_status()
            return response.text

        elapsed, pages = spawn_all(fetch, 20)
        report(elapsed=elapsed, pages=pages)
        """,
        http_server.url,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], http_server)
    assert http_server.stats.connections == CALLS


def test_requests_with_one_shared_session(run: Runner, http_server: SlowHTTPServer) -> None:
    # Two rounds on one Session: the second reuses the first round's connections.
    result = run(
        """
        import sys
        import requests
        from requests.adapters import HTTPAdapter

        base = sys.argv[1]
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=20))

        def fetch(n):
            response = session.get(f"{base}/page/{n}", timeout=10)
            response.raise_for_status()
            return response.text

        first, pages = spawn_all(fetch, 20)
        second, more_pages = spawn_all(fetch, 20)
        session.close()
        report(elapsed=first + second, pages=pages + more_pages)
        """,
        http_server.url,
    )
    assert_overlapped(result["elapsed"], rounds=2)
    assert_pages(result["pages"], http_server, rounds=2)
    assert http_server.stats.connections <= CALLS  # kept alive and shared, not one per request


def test_http_client(run: Runner, http_server: SlowHTTPServer) -> None:
    result = run(
        """
        import http.client
        import sys
        import urllib.parse

        address = urllib.parse.urlsplit(sys.argv[1])

        def fetch(n):
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            try:
                connection.request("GET", f"/page/{n}")
                response = connection.getresponse()
                assert response.status == 200, response.status
                return response.read().decode()
            finally:
                connection.close()

        elapsed, pages = spawn_all(fetch, 20)
        report(elapsed=elapsed, pages=pages)
        """,
        http_server.url,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], http_server)


def test_urllib3_pool_manager(run: Runner, http_server: SlowHTTPServer) -> None:
    result = run(
        """
        import sys
        import urllib3

        base = sys.argv[1]
        http = urllib3.PoolManager(maxsize=20)

        def fetch(n):
            response = http.request("GET", f"{base}/page/{n}", timeout=10)
            assert response.status == 200, response.status
            return response.data.decode()

        elapsed, pages = spawn_all(fetch, 20)
        http.clear()
        report(elapsed=elapsed, pages=pages)
        """,
        http_server.url,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], http_server)


# -- HTTPS, verified against the test CA ---------------------------------------------


def test_https_with_urllib(run: Runner, https_server: SlowHTTPServer, ca_file: str) -> None:
    result = run(
        """
        import ssl
        import sys
        import urllib.request

        base, ca_file = sys.argv[1:3]
        context = ssl.create_default_context(cafile=ca_file)

        def fetch(n):
            with urllib.request.urlopen(f"{base}/page/{n}", timeout=10, context=context) as response:
                return response.read().decode()

        elapsed, pages = spawn_all(fetch, 20)
        report(elapsed=elapsed, pages=pages)
        """,
        https_server.url,
        ca_file,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], https_server)


def test_https_with_requests(run: Runner, https_server: SlowHTTPServer, ca_file: str) -> None:
    result = run(
        """
        import sys
        import requests

        base, ca_file = sys.argv[1:3]

        def fetch(n):
            response = requests.get(f"{base}/page/{n}", timeout=10, verify=ca_file)
            response.raise_for_status()
            return response.text

        elapsed, pages = spawn_all(fetch, 20)

        # The certificate really is checked: without the test CA it is refused.
        try:
            requests.get(f"{base}/page/0", timeout=10)
        except requests.exceptions.SSLError as exc:
            refused = "CERTIFICATE_VERIFY_FAILED" in str(exc)
        else:
            refused = False
        report(elapsed=elapsed, pages=pages, refused=refused)
        """,
        https_server.url,
        ca_file,
    )
    assert_overlapped(result["elapsed"])
    assert_pages(result["pages"], https_server)
    assert result["refused"] is True


# -- XML-RPC: server and clients in one patched process --------------------------------


def test_xmlrpc_client_and_server(run: Runner) -> None:
    # The server is the stdlib's; like socketserver.ThreadingMixIn but with a
    # task instead of a thread, it handles each connection in its own task.
    result = run(
        """
        import time
        import xmlrpc.client
        from xmlrpc.server import SimpleXMLRPCServer

        in_flight = peak = 0

        def slow_square(x):
            global in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            time.sleep(0.3)
            in_flight -= 1
            return x * x

        class TaskPerConnectionServer(SimpleXMLRPCServer):
            request_queue_size = 64  # twenty clients connect at once

            def process_request(self, request, client_address):
                corun.spawn(self.handle_in_task, request, client_address)

            def handle_in_task(self, request, client_address):
                try:
                    self.finish_request(request, client_address)
                except Exception:
                    self.handle_error(request, client_address)
                finally:
                    self.shutdown_request(request)

        server = TaskPerConnectionServer(("127.0.0.1", 0), logRequests=False)
        server.register_function(slow_square)
        serving = corun.spawn(server.serve_forever, 0.05)
        url = "http://127.0.0.1:%d" % server.server_address[1]

        def call(n):
            with xmlrpc.client.ServerProxy(url) as proxy:
                return proxy.slow_square(n)

        elapsed, squares = spawn_all(call, 20)
        serving.kill()
        server.server_close()
        report(elapsed=elapsed, squares=squares, peak=peak, stopped=serving.dead)
        """
    )
    assert_overlapped(result["elapsed"])
    assert result["squares"] == [n * n for n in range(CALLS)]
    assert result["peak"] >= PEAK
    assert result["stopped"] is True


# -- SMTP -----------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib's sendmail: HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.server.stats.connected()
        self.reply("220 localhost test server ready")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command[:4].upper()
            address = re.search(r"<(.*)>", command)
            if verb in ("HELO", "EHLO"):
                self.reply("250 localhost")
            elif verb == "MAIL" and address:
                sender, recipients = address.group(1), []
                self.reply("250 OK")
            elif verb == "RCPT" and address:
                recipients.append(address.group(1))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data.decode())
                with self.server.stats.call():
                    time.sleep(DELAY)  # a slow mail store
                self.server.mails.append(Mail(sender, recipients, "".join(lines)))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        self.stats = Stats()
        self.mails: list[Mail] = []


def test_smtplib(run: Runner) -> None:
    server = SMTPServer()
    with serving(server):
        result = run(
            """
            import smtplib
            import sys
            from email.message import EmailMessage

            port = int(sys.argv[1])

            def send(n):
                message = EmailMessage()
                message["From"] = f"sender{n}@example.com"
                message["To"] = "inbox@example.com"
                message["Subject"] = f"message {n}"
                message.set_content(f"This is message number {n}.")
                # local_hostname: no name lookup of this machine, only 127.0.0.1 traffic
                with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost", timeout=10) as smtp:
                    refused = smtp.send_message(message)
                return refused == {}

            elapsed, accepted = spawn_all(send, 20)
            report(elapsed=elapsed, accepted=accepted)
            """,
            str(server.server_address[1]),
        )
    assert_overlapped(result["elapsed"])
    assert result["accepted"] == [True] * CALLS
    assert sorted(mail.sender for mail in server.mails) == sorted(
        f"sender{n}@example.com" for n in range(CALLS)
    )
    for mail in server.mails:
        n = int(mail.sender.removeprefix("sender").removesuffix("@example.com"))
        assert mail.recipients == ["inbox@example.com"]
        assert f"Subject: message {n}\r\n" in mail.data
        assert f"This is message number {n}." in mail.data
    assert server.stats.connections == CALLS
    assert server.stats.peak >= PEAK


# -- readiness loops: one server task, twenty client tasks ---------------------------

# The clients are the same for both loops: each connects, waits DELAY before it
# speaks, then reads its line back.
ECHO_CLIENTS = """
import socket

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
address = listener.getsockname()

def client(n):
    with socket.create_connection(address, timeout=10) as sock:
        time.sleep(0.3)
        message = f"hello from client {n}\\n".encode()
        sock.sendall(message)
        echoed = b""
        while not echoed.endswith(b"\\n"):
            chunk = sock.recv(4096)
            assert chunk, "the server closed early"
            echoed += chunk
        return echoed.decode()

server = corun.spawn(serve, 20)
elapsed, echoed = spawn_all(client, 20)
report(elapsed=elapsed, echoed=echoed, served=server.get(timeout=10))
"""

SELECT_LOOP = """
import select

def serve(clients):
    \"\"\"A plain select() echo server; returns once ``clients`` connections have closed.\"\"\"
    connections = []
    closed = 0
    while closed < clients:
        readable, _, _ = select.select([listener, *connections], [], [], 10)
        if not readable:
            raise RuntimeError("select() waited 10 s for nothing")
        for sock in readable:
            if sock is listener:
                connections.append(listener.accept()[0])
            elif data := sock.recv(4096):
                sock.sendall(data)
            else:
                connections.remove(sock)
                sock.close()
                closed += 1
    listener.close()
    return closed
"""

SELECTORS_LOOP = """
import selectors

def serve(clients):
    \"\"\"A selectors echo server; returns once ``clients`` connections have closed.\"\"\"
    closed = 0
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        while closed < clients:
            events = selector.select(10)
            if not events:
                raise RuntimeError("select() waited 10 s for nothing")
            for key, _ in events:
                if key.fileobj is listener:
                    selector.register(listener.accept()[0], selectors.EVENT_READ)
                elif data := key.fileobj.recv(4096):
                    key.fileobj.sendall(data)
                else:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    closed += 1
    listener.close()
    return closed
"""


@pytest.mark.parametrize("loop", [SELECT_LOOP, SELECTORS_LOOP], ids=["select", "selectors"])
def test_echo_server_loop_in_one_task_serving_client_tasks(run: Runner, loop: str) -> None:
    result = run(loop + ECHO_CLIENTS)
    assert_overlapped(result["elapsed"])
    assert result["echoed"] == [f"hello from client {n}\n" for n in range(CALLS)]
    assert result["served"] == CALLS
