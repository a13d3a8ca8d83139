"""The WSGI server against real clients: requests, http.client, and raw sockets for malformed input.

The server runs in an OS thread of its own, on that thread's hub; the test's
clients are ordinary blocking clients (the test process is not patched).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import simple_websocket
import trustme
from corun.patches import socket as cosocket

import corun
from corun.hub import get_hub
from corun.wsgi import FileWrapper, WSGIServer

from .conftest import ROOT, PipeLines, process_group, recv_all, run_python

pytestmark = pytest.mark.timeout(10)

MB = 1 << 20


class Served:
    """A WSGIServer running in a thread of its own, on its own hub."""

    def __init__(self, app: Callable[..., Any], **settings: Any) -> None:
        self.app = app
        self.settings = settings
        self.port = 0
        self.server: WSGIServer | None = None
        self._ready = threading.Event()
        self._hub: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        hub = self._hub = get_hub()
        try:
            self.server = WSGIServer(("127.0.0.1", 0), self.app, **self.settings)
            self.server.start()
            self.port = self.server.server_port or 0
            self._ready.set()
            self.server.serve_forever()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            hub.destroy()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(5)
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the server to stop (in its own thread) and wait for the thread to end."""
        server = self.server
        assert server is not None
        if not server.closed:
            self._hub.run_callback_threadsafe(corun.spawn, server.stop, timeout)
        self._thread.join(timeout + 5)
        assert not self._thread.is_alive()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@contextmanager
def serving(app: Callable[..., Any], **settings: Any) -> Iterator[Served]:
    settings.setdefault("access_log", None)
    served = Served(app, **settings)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def read_response(rfile: Any) -> tuple[int, dict[str, str], bytes]:
    """Read one response from a buffered socket file: (status, headers with lower-case names, body)."""
    status_line = rfile.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = rfile.readline()
        assert line, "connection closed inside the head"
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status in (100, 204, 304):
        return status, headers, b""
    if "content-length" in headers:
        body = rfile.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        pieces = []
        while True:
            size = int(rfile.readline().split(b";")[0], 16)
            if not size:
                assert rfile.readline() == b"\r\n"
                break
            pieces.append(rfile.read(size))
            assert rfile.readline() == b"\r\n"
        body = b"".join(pieces)
    else:
        body = rfile.read()
    return status, headers, body


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", environ["PATH_INFO"].encode("latin-1")]


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answer a JSON description of the request: where it came from and what its body was."""
    body = environ["wsgi.input"].read()
    info = {
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "remote_port": environ["REMOTE_PORT"],
        "content_length": environ.get("CONTENT_LENGTH"),
        "length": len(body),
        "sha": hashlib.sha256(body).hexdigest(),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(info).encode()]


# -- keep-alive and pipelining ---------------------------------------------------------


def test_keepalive_serves_many_requests_on_one_connection() -> None:
    with serving(echo) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        ports = set()
        for n in range(20):
            conn.request("POST", f"/n{n}?x={n}", body=b"a" * n)
            response = conn.getresponse()
            info = json.loads(response.read())
            assert response.status == 200
            assert (info["path"], info["query"], info["length"]) == (f"/n{n}", f"x={n}", n)
            ports.add(info["remote_port"])
        conn.close()
        assert len(ports) == 1  # every request came over the same connection

        with requests.Session() as session:
            seen = {session.get(served.url + "/s").json()["remote_port"] for _ in range(10)}
        assert len(seen) == 1


def test_pipelined_requests_are_answered_in_order() -> None:
    with serving(echo) as served, served.connect() as sock:
        sock.sendall(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            b"GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        rfile = sock.makefile("rb")
        answers = [read_response(rfile) for _ in range(4)]
        assert [json.loads(body)["path"] for _, _, body in answers] == ["/one", "/two", "/three", "/four"]
        assert [json.loads(body)["length"] for _, _, body in answers] == [0, 5, 3, 0]
        assert answers[3][1]["connection"] == "close"
        assert rfile.read() == b""  # closed after the request that asked for it


def test_http10_keeps_alive_only_when_asked() -> None:
    with serving(hello) as served:
        with served.connect() as sock:
            sock.sendall(b"GET /a HTTP/1.0\r\n\r\n")
            rfile = sock.makefile("rb")
            status, headers, body = read_response(rfile)
            assert (status, body, headers["connection"]) == (200, b"hello /a", "close")
            assert rfile.read() == b""
        with served.connect() as sock:
            rfile = sock.makefile("rb")
            for path in ("/b", "/c"):
                sock.sendall(f"GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
                status, headers, body = read_response(rfile)
                assert (status, body, headers["connection"]) == (200, b"hello " + path.encode(), "keep-alive")


# -- bodies ------------------------------------------------------------------------------


def test_chunked_request_body_read_by_lines_sizes_and_iteration() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        some = stream.read(4)
        rest = list(stream)
        start_response("200 OK", [])
        reply = {"cl": environ.get("CONTENT_LENGTH"), "first": first.decode(), "some": some.decode()}
        reply["rest"] = [line.decode() for line in rest]
        return [json.dumps(reply).encode()]

    pieces = [b"line one\nli", b"ne two\n", b"x", b"yz", b"tail\nlast"]
    with serving(app) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        conn.request("POST", "/", body=iter(pieces), encode_chunked=True)
        reply = json.loads(conn.getresponse().read())
        conn.close()
        assert reply == {
            "cl": None,
            "first": "line one\n",
            "some": "line",
            "rest": [" two\n", "xyztail\n", "last"],
        }


def test_streamed_response_is_chunked_on_http11_and_close_delimited_on_http10() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""  # empty pieces do not send the head early, nor end the body
        for n in range(5):
            yield b"piece %d;" % n

    expected = b"".join(b"piece %d;" % n for n in range(5))
    with serving(app) as served:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            rfile = sock.makefile("rb")
            for _ in range(2):
                _, headers, body = read_response(rfile)
                assert headers["transfer-encoding"] == "chunked" and body == expected
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw = recv_all(sock)
            head, _, body = raw.partition(b"\r\n\r\n")
            assert b"chunked" not in head and b"Connection: close" in head and body == expected
        assert requests.get(served.url).content == expected


def test_write_callable_streams_before_the_iterable() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "11")])
        write(b"hello")
        write(b" ")
        return [b"world"]

    with serving(app) as served:
        response = requests.get(served.url)
        assert response.content == b"hello world" and response.headers["Content-Length"] == "11"


def test_expect_100_continue_is_sent_only_when_the_body_is_read() -> None:
    with serving(echo) as served:
        with served.connect() as sock:
            sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            rfile = sock.makefile("rb")
            assert read_response(rfile)[0] == 100  # before any byte of the body was sent
            sock.sendall(b"data")
            status, _, body = read_response(rfile)
            assert status == 200 and json.loads(body)["length"] == 4

    def no_body(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("403 Forbidden", [])
        return [b"no"]

    with serving(no_body) as served, served.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        raw = recv_all(sock)  # the body never came: the connection cannot be reused
        assert raw.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"100 Continue" not in raw


def test_20_mb_upload_and_downloads() -> None:
    payload = os.urandom(20 * MB)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path == "/up":
            return echo(environ, start_response)
        if path == "/stream":
            start_response("200 OK", [])
            return (payload[i : i + MB] for i in range(0, len(payload), MB))
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](open(environ["HTTP_X_FILE"], "rb"))

    with serving(app) as served, requests.Session() as session:
        info = session.post(served.url + "/up", data=payload).json()
        assert info["length"] == len(payload) and info["sha"] == hashlib.sha256(payload).hexdigest()
        assert info["content_length"] == str(len(payload))
        assert session.get(served.url + "/stream").content == payload


def test_file_wrapper_sends_a_regular_file_with_sendfile(tmp_path: Path) -> None:
    payload = os.urandom(3 * MB + 17)
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    used: list[Any] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        f = open(path, "rb")
        f.seek(int(environ["QUERY_STRING"] or 0))
        return environ["wsgi.file_wrapper"](f)

    original = cosocket.socket.sendfile

    def spy(self: Any, file: Any, offset: int = 0, count: int | None = None) -> int:
        used.append((offset, count))
        return original(self, file, offset, count)

    cosocket.socket.sendfile = spy  # type: ignore[method-assign]
    try:
        with serving(app) as served, requests.Session() as session:
            response = session.get(served.url)
            assert response.content == payload and response.headers["Content-Length"] == str(len(payload))
            assert session.get(served.url + "?100").content == payload[100:]
            assert session.head(served.url).headers["Content-Length"] == str(len(payload))
    finally:
        cosocket.socket.sendfile = original  # type: ignore[method-assign]
    assert used == [(0, len(payload)), (100, len(payload) - 100)]


def test_file_wrapper_iterates_what_sendfile_cannot_send() -> None:
    import io

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [])
        return FileWrapper(io.BytesIO(b"x" * 100_000), 4096)

    with serving(app) as served:
        assert requests.get(served.url).content == b"x" * 100_000


# -- concurrency and timeouts ----------------------------------------------------------------


def test_a_slow_client_does_not_hold_up_a_fast_one() -> None:
    request = b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"  # 50 bytes: 2.5 s
    finished: dict[str, float] = {}

    def slow_client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=8) as sock:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
            assert recv_all(sock).endswith(b"hello /slow")
        finished["slow"] = time.monotonic()

    with serving(hello) as served:
        thread = threading.Thread(target=slow_client, args=(served.port,))
        thread.start()
        time.sleep(0.2)  # the slow request is under way
        start = time.monotonic()
        with requests.Session() as session:
            for n in range(20):
                assert session.get(f"{served.url}/fast{n}").content == f"hello /fast{n}".encode()
        finished["fast"] = time.monotonic()
        thread.join(8)
    assert finished["fast"] - start < 1.5
    assert finished["fast"] < finished["slow"]


def test_idle_connections_time_out() -> None:
    with serving(hello, keepalive_timeout=0.3) as served:
        socks = [served.connect() for _ in range(30)]
        used = served.connect()
        used.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rfile = used.makefile("rb")
        assert read_response(rfile)[0] == 200
        start = time.monotonic()
        for sock in [*socks, used]:
            assert sock.recv(100) == b""  # closed by the server, without an answer
            sock.close()
        assert time.monotonic() - start < 3


def test_a_request_head_arriving_too_slowly_gets_408() -> None:
    with serving(hello, timeout=0.3) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert recv_all(sock).startswith(b"HTTP/1.1 408 ")


def test_request_timeout_answers_503() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            corun.sleep(3)
        start_response("200 OK", [])
        return [b"done"]

    with serving(app, request_timeout=0.3) as served:
        start = time.monotonic()
        response = requests.get(served.url + "/slow")
        assert response.status_code == 503 and time.monotonic() - start < 2
        assert requests.get(served.url + "/fast").content == b"done"


# -- strict framing: smuggling attempts ----------------------------------------------------------

SMUGGLING = {
    "content-length with transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "transfer-encoding with content-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "duplicate content-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "same content-length twice": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    ),
    "bad chunk size": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"
    ),
    "chunk size overflow": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10000000000000003\r\nabc\r\n0\r\n\r\n"
    ),
    "obsolete line folding": b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "transfer-encoding not ending in chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
    "space before the colon": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
    "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
}


@pytest.mark.parametrize("request_bytes", SMUGGLING.values(), ids=list(SMUGGLING))
def test_ambiguous_framing_is_rejected_with_400_and_close(request_bytes: bytes) -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        finally:
            calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    with serving(app) as served, served.connect() as sock:
        sock.sendall(request_bytes)
        raw = recv_all(sock)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw
    assert raw.count(b"HTTP/1.1") == 1 and b"Connection: close" in raw
    assert "/smuggled" not in calls


def test_a_bad_request_after_good_pipelined_ones_is_answered_in_turn() -> None:
    with serving(hello) as served, served.connect() as sock:
        sock.sendall(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"
        )
        rfile = sock.makefile("rb")
        assert read_response(rfile)[2] == b"hello /a"
        assert read_response(rfile)[2] == b"hello /b"
        assert read_response(rfile)[0] == 400
        assert rfile.read() == b""


# -- RFC 9112: what a server must refuse ------------------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


class Recorder:
    """A WSGI application that notes each request it is called for and reads its whole body."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.read_errors: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.calls.append(environ["PATH_INFO"])
        try:
            body = environ["wsgi.input"].read()
        except OSError as exc:
            self.read_errors.append(f"{environ['PATH_INFO']}: {exc}")
            raise
        start_response("200 OK", [])
        return [b"read %d" % len(body)]


def exchange(request_bytes: bytes, **settings: Any) -> tuple[bytes, Recorder]:
    """Send ``request_bytes`` on one connection; return all the server sent until it closed, and the app."""
    app = Recorder()
    with serving(app, **settings) as served, served.connect() as sock:
        try:
            sock.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before all of it was sent
        try:
            raw = recv_all(sock)
        except ConnectionResetError:
            raise AssertionError("the connection was reset: the answer may be lost") from None
    return raw, app


def assert_refused(raw: bytes, status: int) -> None:
    """One answer, ``status``, and the connection closed after it."""
    rfile = io.BytesIO(raw)
    answered, headers, _ = read_response(rfile)
    assert answered == status, raw[:200]
    assert headers["connection"] == "close"
    assert rfile.read() == b"", raw  # nothing else was answered


REFUSED_BEFORE_THE_APPLICATION = {
    # Section 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
    "http10-chunked": (
        b"POST /x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        400,
    ),
    "http10-chunked-no-keepalive": (
        b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        400,
    ),
    "http09-chunked": (
        b"POST /x HTTP/0.9\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        400,
    ),
    # Section 6.1: a coding the server does not understand (corun decodes none) gets 501.
    "identity-chunked": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        501,
    ),
    "gzip-chunked": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        501,
    ),
    "gzip-then-chunked-fields": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        501,
    ),
    "not-a-token-before-chunked": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: g(zip), chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        400,
    ),
    # Section 6.3: a final coding other than chunked cannot be framed.
    "xchunked": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        + SMUGGLED,
        400,
    ),
    "chunked-with-a-parameter": (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        + SMUGGLED,
        400,
    ),
    # Section 3.2: one valid Host, always present in HTTP/1.1.
    "no-host": (b"GET /x HTTP/1.1\r\n\r\n" + SMUGGLED, 400),
    "two-hosts": (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED, 400),
    "two-hosts-http10": (
        b"GET /x HTTP/1.0\r\nHost: a\r\nHost: a\r\nConnection: keep-alive\r\n\r\n" + SMUGGLED,
        400,
    ),
    "host-with-a-space": (b"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n" + SMUGGLED, 400),
    "host-with-userinfo": (b"GET /x HTTP/1.1\r\nHost: user@a\r\n\r\n" + SMUGGLED, 400),
    "host-with-a-path": (b"GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n" + SMUGGLED, 400),
    "host-with-a-bad-port": (b"GET /x HTTP/1.1\r\nHost: a:8o\r\n\r\n" + SMUGGLED, 400),
    "host-with-an-open-bracket": (b"GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n" + SMUGGLED, 400),
}


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    REFUSED_BEFORE_THE_APPLICATION.values(),
    ids=list(REFUSED_BEFORE_THE_APPLICATION),
)
def test_requests_rfc_9112_refuses_never_reach_the_application(request_bytes: bytes, status: int) -> None:
    raw, app = exchange(request_bytes)
    assert_refused(raw, status)
    assert app.calls == []  # neither the refused request nor the one smuggled after it


@pytest.mark.parametrize(
    "host",
    [
        b"",
        b"example.com",
        b"example.com:8080",
        b"127.0.0.1:80",
        b"[::1]:8080",
        b"xn--bcher-kva.example",
        b"a%20b",
    ],
)
def test_valid_host_fields_are_accepted(host: bytes) -> None:
    raw, app = exchange(b"GET /ok HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 "), raw
    assert app.calls == ["/ok"]


def test_http10_needs_no_host_and_chunked_with_empty_list_elements_is_chunked() -> None:
    raw, app = exchange(
        b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"POST /new HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    assert raw.count(b"HTTP/1.1 200 ") == 2 and raw.endswith(b"read 5"), raw
    assert app.calls == ["/old", "/new"]


def test_a_chunk_size_line_longer_than_the_limit_gets_400_and_close() -> None:
    extension = b";name=" + b"v" * 5000  # 5 kB of chunk extension on one line
    raw, app = exchange(
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5"
        + extension
        + b"\r\nhello\r\n0\r\n\r\n"
        + SMUGGLED
    )
    assert_refused(raw, 400)
    assert b"chunk-size line too long" in raw
    # The head was sound, so the application ran; its read of the body failed.
    assert app.calls == ["/x"] and len(app.read_errors) == 1


def test_the_chunk_size_line_limit_is_the_setting_and_counts_lines_spread_over_receives() -> None:
    app = Recorder()
    line = b"5;" + b"e" * 996 + b"\r"  # with its LF, 1000 bytes
    with serving(app, max_chunk_line=1000) as served, served.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(line), 100):  # at the limit, in ten receives
            sock.sendall(line[start : start + 100])
            time.sleep(0.01)
        sock.sendall(b"\nhello\r\n0\r\n\r\n")
        rfile = sock.makefile("rb")
        assert read_response(rfile)[2] == b"read 5"
        sock.sendall(b"POST /long HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(line), 100):  # one byte over, in pieces: refused without its end
            sock.sendall(line[start : start + 100])
            time.sleep(0.01)
        sock.sendall(b"e\r\n")
        status, headers, _ = read_response(rfile)
        assert status == 400 and headers["connection"] == "close"
        assert rfile.read() == b""
    assert app.calls == ["/ok", "/long"] and len(app.read_errors) == 1


def test_an_endless_chunk_extension_is_cut_off_early() -> None:
    # The line never ends: the answer comes after about 4 kB, not after the client gives up.
    app = Recorder()
    with serving(app) as served, served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=")
        sent = 0
        sock.settimeout(0.5)
        try:
            while sent < 64 * MB:
                sock.sendall(b"v" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading
        sock.settimeout(5)
        with sock.makefile("rb") as rfile:
            assert read_response(rfile)[0] == 400
    assert sent < 8 * MB
    assert app.calls == ["/x"] and len(app.read_errors) == 1


def test_an_endless_trailer_field_gets_431() -> None:
    raw, app = exchange(
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: "
        + b"t" * 100_000
    )
    assert_refused(raw, 431)
    assert app.calls == ["/x"] and len(app.read_errors) == 1


def test_trailer_fields_and_chunk_extensions_within_limits_are_accepted() -> None:
    raw, app = exchange(
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;a=b;c="d e"\r\nhello\r\n'
        + b"6;"
        + b"x" * 3000
        + b"\r\n world\r\n"
        + b"0\r\nX-Trailer: "
        + b"t" * 3000
        + b"\r\nX-Other: 1\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert raw.count(b"HTTP/1.1 200 ") == 2, raw
    assert app.calls == ["/x", "/next"] and app.read_errors == []
    assert b"read 11" in raw


def test_header_timeout_answers_a_trickling_head_with_408_while_others_are_served() -> None:
    app = Recorder()
    results: dict[str, Any] = {}

    def trickle(port: int, n: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=8) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            sock.sendall(b"GET /trickle HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            try:
                while True:  # one byte every 0.1 s, for as long as the server listens
                    sock.sendall(b"a")
                    time.sleep(0.1)
                    if time.monotonic() - start > 6:
                        raise AssertionError("the server still waits for the head after 6 s")
            except (BrokenPipeError, ConnectionResetError):
                pass
            except AssertionError as exc:
                results[f"trickle-{n}"] = exc
                return
            try:
                raw = recv_all(sock)
            except ConnectionResetError:
                raw = b"reset"
            results[f"trickle-{n}"] = (time.monotonic() - start, raw)

    with serving(app, header_timeout=1.0) as served:
        threads = [threading.Thread(target=trickle, args=(served.port, n)) for n in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        latencies = []
        with requests.Session() as session:
            for n in range(20):  # about 2 s of ordinary requests beside the trickling clients
                start = time.monotonic()
                assert session.get(f"{served.url}/fast{n}").content == b"read 0"
                latencies.append(time.monotonic() - start)
                time.sleep(0.1)
        for thread in threads:
            thread.join(10)
    for n in range(3):
        outcome = results[f"trickle-{n}"]
        assert isinstance(outcome, tuple), outcome
        elapsed, raw = outcome
        assert 0.9 < elapsed < 3.0, elapsed
        assert raw.startswith(b"HTTP/1.1 408 ") or raw == b"reset", raw
    assert "/trickle" not in app.calls
    assert sorted(latencies)[len(latencies) // 2] < 0.1 and max(latencies) < 0.5, latencies


def test_header_timeout_counts_from_the_first_byte_not_from_the_connection() -> None:
    app = Recorder()
    with serving(app, header_timeout=0.5) as served, served.connect() as sock:
        time.sleep(1.0)  # idle, within the keep-alive timeout: no head has begun
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        sock.sendall(b"\r\n")
        rfile = sock.makefile("rb")
        assert read_response(rfile)[0] == 200
        start = time.monotonic()
        sock.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n")  # never finished
        status, headers, _ = read_response(rfile)
        assert status == 408 and headers["connection"] == "close"
        assert 0.4 < time.monotonic() - start < 2.0
    assert app.calls == ["/a"]


def test_header_timeout_does_not_count_the_time_the_previous_request_took() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            corun.sleep(1.0)
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    with serving(app, header_timeout=0.5) as served, served.connect() as sock:
        # The next head begins while /slow is answered, and ends 1.2 s after it began:
        # 0.2 s after the server began waiting for it.
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.2)
        sock.sendall(b"\r\n")
        rfile = sock.makefile("rb")
        assert read_response(rfile)[2] == b"/slow"
        assert read_response(rfile)[2] == b"/next"


def test_blank_lines_do_not_extend_the_keepalive_timeout() -> None:
    with serving(hello, keepalive_timeout=0.5) as served, served.connect() as sock:
        start = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() - start < 5:
                sock.sendall(b"\r\n")  # allowed before a request, and no request at all
                time.sleep(0.05)
        assert time.monotonic() - start < 2.0


# -- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Endless: " + b"b" * 300_000, 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000, 413),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"400\r\n"
            + b"y" * 1024
            + b"\r\n" * 2,
            413,
        ),
    ],
    ids=["request-line", "header-count", "header-size", "endless-header", "content-length", "chunked-body"],
)
def test_oversized_requests_get_their_status(request_bytes: bytes, status: int) -> None:
    with serving(echo, max_body_size=1000) as served, served.connect() as sock:
        try:
            sock.sendall(request_bytes)
        except ConnectionResetError:
            pass  # answered and closed before all of it was sent
        raw = sock.recv(65536)
        assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:100]


def test_limits_allow_requests_at_their_size() -> None:
    target = b"/" + b"a" * 8189  # max_request_line is 8190
    fields = b"Host: x\r\nContent-Length: 1000\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(3))
    with serving(echo, max_body_size=1000, max_header_count=5) as served, served.connect() as sock:
        sock.sendall(b"POST " + target + b" HTTP/1.1\r\n" + fields + b"\r\n" + b"z" * 1000)
        status, _, body = read_response(sock.makefile("rb"))
    assert status == 200 and json.loads(body)["length"] == 1000


def test_a_large_head_arriving_in_small_pieces_is_accepted() -> None:
    fields = [b"X-Field-%d: %s\r\n" % (n, b"v" * 1000) for n in range(40)]  # 40 kB of 64 kB allowed
    with serving(echo) as served, served.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET /pieces HTTP/1.1\r\nHost: x\r\n")
        for field in fields:
            sock.sendall(field)
            time.sleep(0.005)
        sock.sendall(b"\r\n")
        status, _, body = read_response(sock.makefile("rb"))
    assert status == 200 and json.loads(body)["path"] == "/pieces"


# -- the application's errors and response rules ----------------------------------------------


def test_application_error_gives_500_logs_the_traceback_and_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("kaboom")
        return hello(environ, start_response)

    with caplog.at_level(logging.ERROR, logger="corun.wsgi"), serving(app) as served:
        with requests.Session() as session:
            first = session.get(served.url + "/boom")
            second = session.get(served.url + "/ok")
        assert first.status_code == 500 and second.content == b"hello /ok"
    record = next(r for r in caplog.records if r.exc_info)
    assert "/boom" in record.getMessage() and "kaboom" in caplog.text and "Traceback" in caplog.text


def test_application_error_after_the_head_cuts_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise RuntimeError("midway")

    with (
        caplog.at_level(logging.ERROR, logger="corun.wsgi"),
        serving(app) as served,
        served.connect() as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = recv_all(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(b"7\r\npartial\r\n")  # no final chunk
    assert "midway" in caplog.text


def test_start_response_with_exc_info_replaces_the_head_or_reraises() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise KeyError("problem")
        except KeyError:
            import sys

            start_response("502 Bad Gateway", [("X-Error", "1")], sys.exc_info())
        if environ["PATH_INFO"] == "/late":
            yield b"sent"
            try:
                raise ValueError("late")
            except ValueError:
                import sys

                start_response("500 Oops", [], sys.exc_info())  # re-raises: the head is out
        yield b"replaced"

    with serving(app) as served:
        response = requests.get(served.url)
        assert (response.status_code, response.headers["X-Error"], response.content) == (
            502,
            "1",
            b"replaced",
        )
        with served.connect() as sock:
            sock.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = recv_all(sock)
        assert (
            raw.startswith(b"HTTP/1.1 502 Bad Gateway") and b"4\r\nsent\r\n" in raw and b"replaced" not in raw
        )


def test_head_204_and_304_have_no_body_and_keep_the_connection() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        status = {"/204": "204 No Content", "/304": "304 Not Modified"}.get(environ["PATH_INFO"], "200 OK")
        start_response(status, [])
        if environ["PATH_INFO"] == "/stream":
            return iter([b"streamed"])
        return [b"0123456789"]

    with serving(app) as served, served.connect() as sock:
        rfile = sock.makefile("rb")
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        line = rfile.readline()
        head = [line]
        while line != b"\r\n":
            line = rfile.readline()
            head.append(line)
        assert head[0].startswith(b"HTTP/1.1 200") and b"Content-Length: 10\r\n" in head
        for path in (b"/204", b"/304"):
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(rfile)
            assert status == int(path[1:]) and body == b""
            assert "content-length" not in headers and "transfer-encoding" not in headers
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line = rfile.readline()
        while rfile.readline() != b"\r\n":
            pass
        assert status_line.startswith(b"HTTP/1.1 200")
        assert read_response(rfile)[2] == b"0123456789"  # the next answer follows the head directly


def test_start_response_rejects_headers_that_would_break_framing(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b"x"]

    with caplog.at_level(logging.ERROR, logger="corun.wsgi"), serving(app) as served:
        response = requests.get(served.url)
    assert response.status_code == 500 and "evil" not in response.headers.get("Set-Cookie", "")


def test_connection_close_from_the_application_closes_after_the_answer() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Connection", "close")])
        return [b"bye"]

    with serving(app) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = recv_all(sock)
    assert raw.count(b"HTTP/1.1 200") == 1 and raw.endswith(b"bye")


def test_environ_follows_pep_3333() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    with serving(app) as served, served.connect() as sock:
        sock.sendall(
            b"POST /a%20b/%E9t%C3%A9?q=%20x&y=1 HTTP/1.1\r\nHost: example.com\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 3\r\nX-Dup: 1\r\nX-Dup: 2\r\nX_Sneaky: 1\r\n\r\nabc"
        )
        assert read_response(sock.makefile("rb"))[0] == 200
        local_port = sock.getsockname()[1]
    assert seen["REQUEST_METHOD"] == "POST" and seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == "/a b/\xe9t\xc3\xa9"  # bytes decoded as latin-1
    assert seen["QUERY_STRING"] == "q=%20x&y=1"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", str(served.port))
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("127.0.0.1", str(local_port))
    assert (seen["CONTENT_TYPE"], seen["CONTENT_LENGTH"]) == ("text/plain", "3")
    assert seen["HTTP_HOST"] == "example.com" and seen["HTTP_X_DUP"] == "1,2"
    assert "HTTP_X_SNEAKY" not in seen and "HTTP_CONTENT_LENGTH" not in seen
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1" and seen["wsgi.url_scheme"] == "http"
    assert seen["wsgi.version"] == (1, 0) and seen["wsgi.input_terminated"] is True
    assert (seen["wsgi.multithread"], seen["wsgi.multiprocess"], seen["wsgi.run_once"]) == (
        False,
        False,
        False,
    )
    assert hasattr(seen["wsgi.errors"], "write") and seen["wsgi.file_wrapper"] is FileWrapper


def test_access_log_uses_the_common_log_format(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="corun.wsgi"),
        serving(hello, access_log=logging.getLogger("corun.wsgi")) as served,
    ):
        requests.get(served.url + "/logged?x=1")
    lines = [r.getMessage() for r in caplog.records if "/logged" in r.getMessage()]
    assert len(lines) == 1
    import re

    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /logged\?x=1 HTTP/1\.1" 200 13',
        lines[0],
    ), lines[0]


# -- stopping and TLS -----------------------------------------------------------------------------


def test_stop_lets_requests_in_flight_finish_and_closes_idle_connections() -> None:
    started = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started.set()
        corun.sleep(0.5)
        start_response("200 OK", [])
        return [b"finished"]

    served = Served(app, access_log=None)
    served.start()
    idle = served.connect()
    busy = served.connect()
    busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert started.wait(5)
    start = time.monotonic()
    served.stop(timeout=10)
    assert time.monotonic() - start < 5  # not the whole timeout: the in-flight request (0.5 s) finished
    raw = recv_all(busy)
    assert raw.startswith(b"HTTP/1.1 200") and b"Connection: close" in raw and raw.endswith(b"finished")
    assert idle.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", served.port), timeout=2)
    idle.close()
    busy.close()


def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [environ["wsgi.url_scheme"].encode(), b" ", hashlib.sha256(body).hexdigest().encode()]

    payload = os.urandom(2 * MB)
    with serving(app, ssl_context=context) as served, requests.Session() as session:
        url = f"https://127.0.0.1:{served.port}/"
        for _ in range(3):
            response = session.post(url, data=payload, verify=str(ca_file))
            assert response.content == b"https " + hashlib.sha256(payload).hexdigest().encode()


# -- a real framework, under patching ---------------------------------------------------------------


def test_flask_app_answers_fast_while_slow_sleeps() -> None:
    pytest.importorskip("flask")
    result = run_python(
        """
        from corun import monkey; monkey.patch_all()
        import json, time
        import corun, flask, requests
        from corun.wsgi import WSGIServer

        app = flask.Flask("demo")

        @app.route("/slow")
        def slow():
            time.sleep(2)
            return "slow done"

        @app.route("/fast")
        def fast():
            return "fast done"

        server = WSGIServer(("127.0.0.1", 0), app, access_log=None)
        server.start()
        url = f"http://127.0.0.1:{server.server_port}"
        t0 = time.monotonic()
        done = {}

        def get(path):
            text = requests.get(url + path, timeout=10).text
            done[path] = (round(time.monotonic() - t0, 2), text)

        slow = corun.spawn(get, "/slow")
        corun.sleep(0.2)
        fast = [corun.spawn(get, "/fast") for _ in range(5)]
        corun.joinall([slow, *fast], raise_error=True)
        server.stop()
        print(json.dumps(done))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["/slow"][1] == "slow done" and done["/fast"][1] == "fast done"
    assert done["/fast"][0] < 1.0 < 2.0 <= done["/slow"][0]


# -- Upgrade: the application takes the connection over ------------------------------------------

# A plain WSGI application serving WebSockets with simple-websocket (as Flask-Sock does), which
# finds the socket under werkzeug's or gunicorn's environ key.  It prints each path it is called for.
WS_APP = """
import sys

import simple_websocket


def app(environ, start_response):
    path = environ["PATH_INFO"]
    sys.stdout.write(f"called {path}\\n")
    sys.stdout.flush()
    if path in ("/ws", "/ws-stop"):
        ws = simple_websocket.Server.accept(environ)
        try:
            while True:
                data = ws.receive()
                if data == "bye":
                    ws.close(message="bye")
                    break
                ws.send("echo " + data if isinstance(data, str) else data[::-1])
        except simple_websocket.ConnectionClosed:
            pass
        if path == "/ws-stop":
            raise StopIteration  # how Flask-Sock ends a WebSocket under gunicorn
        return []
    body = f"plain {path} {environ.get('HTTP_UPGRADE', '-')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

WS_SERVER = """
from corun import monkey

monkey.patch_all()

from corun.wsgi import WSGIServer
from ws_app import app

server = WSGIServer(("127.0.0.1", 0), app, access_log=None)
server.start()
print("port", server.server_port, flush=True)
server.serve_forever()
"""


@contextmanager
def ws_server(tmp_path: Path) -> Iterator[tuple[int, PipeLines, subprocess.Popen[str]]]:
    """WS_APP behind corun.wsgi in a patched interpreter of its own: (port, its stdout, the process)."""
    (tmp_path / "ws_app.py").write_text(WS_APP)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", WS_SERVER]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with process_group(command, env=env, **options) as proc:
        lines = PipeLines(proc.stdout)
        port = int(lines.wait_for("port").split()[1])
        yield port, lines, proc


def read_head(sock: socket.socket) -> bytes:
    """Bytes up to the end of a response head (and possibly a little after)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    return data


def recv_until_closed(sock: socket.socket) -> bytes:
    """What arrives until the peer closes the connection (a reset ends it too)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client's WebSocket frame (FIN set, mask 0: the payload is sent as it is)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_a_websocket_round_trip_through_simple_websocket(tmp_path: Path) -> None:
    with ws_server(tmp_path) as (port, _, proc):
        first = simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/ws")
        second = simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/ws-stop")
        first.send("hello")
        second.send("world")
        assert first.receive(timeout=5) == "echo hello"
        assert second.receive(timeout=5) == "echo world"
        first.send(b"\x00\x01\x02")
        assert first.receive(timeout=5) == b"\x02\x01\x00"
        # Plain HTTP is answered while both WebSockets are open.
        response = requests.get(f"http://127.0.0.1:{port}/plain", timeout=5)
        assert response.text == "plain /plain -"
        for client in (first, second):
            client.send("bye")
            with pytest.raises(simple_websocket.ConnectionClosed):
                client.receive(timeout=5)
            assert (client.close_reason, client.close_message) == (1000, "bye")
        # The server still answers, and logged no failure for the one ended by StopIteration.
        assert requests.get(f"http://127.0.0.1:{port}/again", timeout=5).text == "plain /again -"
        proc.kill()
        _, stderr = proc.communicate()
    assert "Traceback" not in stderr, stderr


def test_after_a_hand_over_the_server_neither_writes_nor_reads(tmp_path: Path) -> None:
    key = base64.b64encode(b"0123456789abcdef")
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with ws_server(tmp_path) as (port, lines, _):
        with socket.create_connection(("127.0.0.1", port), 5) as sock:
            sock.sendall(handshake)
            head = read_head(sock)
            assert head.startswith(b"HTTP/1.1 101 ") and head.endswith(b"\r\n\r\n"), head
            assert b"Server: corun" not in head  # written by the application, not the server
            sock.sendall(masked_frame(0x1, b"bye"))
            closing = b""
            while len(closing) < 7:  # the application's close frame: 1000, "bye"
                piece = sock.recv(64)
                assert piece, closing
                closing += piece
            assert closing == b"\x88\x05\x03\xe8bye"
            # The client's close, then HTTP that nobody may read any more.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(masked_frame(0x8, b"\x03\xe8") + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"HTTP/" not in recv_until_closed(sock)
        assert requests.get(f"http://127.0.0.1:{port}/marker", timeout=5).status_code == 200
        called = []
        while "/marker" not in (line := lines.readline()):
            called.append(line)
    assert called == ["called /ws"]


def test_an_upgrade_the_application_declines_is_answered_over_http_and_ends_the_connection() -> None:
    raw, app = exchange(
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /declined HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    rfile = io.BytesIO(raw)
    status, headers, body = read_response(rfile)
    assert (status, body) == (200, b"read 0") and "connection" not in headers  # kept alive
    status, headers, body = read_response(rfile)
    assert (status, body, headers["connection"]) == (200, b"read 0", "close")
    assert rfile.read() == b""
    assert app.calls == ["/first", "/declined"]  # what follows an upgrade head is not HTTP
