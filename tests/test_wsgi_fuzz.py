"""Property test of corun.wsgi's request parsing glue: generated and mutated requests on raw sockets.

Hypothesis builds request heads and bodies (chunked with extensions and
trailers, or by Content-Length), then mutates some of them byte by byte, and
sends each on a connection of its own followed by a last request.  Whatever
arrives, the server must not fail a task, must end the connection within its
deadlines, and must never pass a request to the application after it refused
one on that connection.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_wsgi import serving

pytestmark = pytest.mark.timeout(120)

# Short deadlines, so that a request left unfinished costs a fraction of a second, and small
# limits, so that the generated requests reach them.
SERVER_SETTINGS: dict[str, Any] = {
    "timeout": 0.2,
    "header_timeout": 0.2,
    "keepalive_timeout": 0.2,
    "max_chunk_line": 128,
    "max_header_size": 2048,
    "max_request_line": 256,
    "max_body_size": 4096,
}
# Every connection ends within this: the deadlines above, several times over.
CLOSE_WITHIN = 3.0
LAST = b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


class App:
    """Notes the path of each request it is called for, reads the body, answers 200."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            self.calls.append(environ["PATH_INFO"])
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok %d" % len(body)]


class Records(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def recorded(*names: str) -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def chunk(data: bytes, extension: bytes) -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


def mostly(usual: Any, *others: Any) -> st.SearchStrategy[Any]:
    """``usual`` about half the time, else one of ``others``."""
    return st.sampled_from([usual] * max(1, len(others)) + list(others))


@st.composite
def requests_(draw: st.DrawFn) -> bytes:
    """One request, well formed or nearly: a head from parts known to matter, then its body."""
    method = draw(mostly(b"POST", b"GET", b"PUT", b"HEAD", b"OPTIONS", b"CONNECT"))
    target = draw(mostly(b"/", b"/a?b=c", b"*", b"http://x/y", b"/%41", b"/" + b"t" * 300))
    version = draw(mostly(b"HTTP/1.1", b"HTTP/1.0"))
    hosts = draw(mostly([b"x"], [], [b"x", b"x"], [b"a b"], [b""], [b"[::1]:80"], [b"u@x"]))
    fields = [(b"Host", host) for host in hosts]
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    body = draw(st.binary(max_size=300))
    if framing == "length":
        declared = draw(mostly(b"%d" % len(body), b"%d" % (len(body) + 5), b"0", b"5000", b"-1"))
        fields.append((b"Content-Length", declared))
        payload = body
    elif framing == "chunked":
        codings = draw(mostly(b"chunked", b"identity, chunked", b"gzip, chunked", b"xchunked", b", chunked"))
        fields.append((b"Transfer-Encoding", codings))
        pieces = draw(st.lists(st.binary(min_size=1, max_size=50), max_size=4))
        extension = mostly(b"", b";a=b", b';q="x y"', b";" + b"e" * 200)
        payload = b"".join(chunk(piece, draw(extension)) for piece in pieces)
        trailer = draw(mostly(b"", b"X-T: 1\r\n", b"X-Long: " + b"t" * 3000 + b"\r\n"))
        payload += b"0" + draw(extension) + b"\r\n" + trailer + b"\r\n"
    else:
        payload = b""
    for name, values in [
        (b"Connection", [b"keep-alive", b"close", b"Upgrade", b"upgrade, keep-alive"]),
        (b"Upgrade", [b"websocket"]),
        (b"Expect", [b"100-continue"]),
        (b"X-Filler", [b"f" * 100, b"f" * 100, b"f" * 2500]),
    ]:
        if draw(st.integers(0, 3)) == 0:
            fields.append((name, draw(st.sampled_from(values))))
    order = draw(st.permutations(fields))
    head = b"%s %s %s\r\n" % (method, target, version)
    head += b"".join(b"%s: %s\r\n" % field for field in order)
    return head + b"\r\n" + payload


@st.composite
def mutated(draw: st.DrawFn, request: st.SearchStrategy[bytes]) -> bytes:
    """``request`` with up to three byte-level changes: cut, insert, overwrite, CRLF to LF, repeat."""
    data = draw(request)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 20)))
        kind = draw(st.sampled_from(["cut", "insert", "overwrite", "bare-lf", "repeat"]))
        if kind == "cut":
            data = data[:at] + data[end:]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif kind == "overwrite":
            data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at + 4 :]
        elif kind == "bare-lf":
            data = data[:at] + data[at:].replace(b"\r\n", b"\n", 1)
        else:
            data = data[:end] + data[at:end] + data[end:]
    return data


def exchange(port: int, stream: bytes, half_close: bool) -> tuple[bytes, float]:
    """Send ``stream``; return what came back until the server closed, and how long that took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_WITHIN + 2) as sock:
        try:
            sock.sendall(stream)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed before all of it was sent
        chunks = []
        try:
            while data := sock.recv(65536):
                chunks.append(data)
        except ConnectionResetError:
            pass  # closed with bytes unread: what was answered before may be lost
        except TimeoutError:
            raise AssertionError(f"the server held the connection for {CLOSE_WITHIN + 2} s") from None
    return b"".join(chunks), time.monotonic() - start


def test_no_request_crashes_a_task_outlives_its_deadlines_or_follows_a_refusal() -> None:
    app = App()
    seen = {"examples": 0, "last reached": 0, "refused": 0}
    with (
        recorded("corun.server", "fuzz.errors") as errors,
        serving(app, error_log=logging.getLogger("fuzz.errors"), **SERVER_SETTINGS) as served,
    ):

        @settings(
            max_examples=200,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            request=st.one_of(requests_(), requests_(), mutated(requests_())),
            half_close=st.integers(0, 4).map(bool),  # most clients say they are done
        )
        def check(request: bytes, half_close: bool) -> None:
            app.calls.clear()
            raw, elapsed = exchange(served.port, request + LAST, half_close)
            assert elapsed < CLOSE_WITHIN, elapsed
            assert errors.records == [], [record.getMessage() for record in errors.records]
            statuses = [int(status) for status in STATUS.findall(raw) if status != b"100"]
            assert all(status not in (500, 503) for status in statuses), raw
            refused = [n for n, status in enumerate(statuses) if status >= 400]
            if refused:
                first = refused[0]
                # Nothing answered after a refusal, and no request passed on after it.
                assert len(statuses) == first + 1, raw
                assert len(app.calls) <= first + 1, (app.calls, raw)
                assert "/last" not in app.calls[:first] + app.calls[first + 1 :]
            # Every 200 is the application's answer.
            assert sum(1 for status in statuses if status == 200) <= len(app.calls)
            seen["examples"] += 1
            seen["last reached"] += "/last" in app.calls
            seen["refused"] += bool(refused)

        check()
        # The server is still well after all that.
        raw, _ = exchange(served.port, LAST, False)
        assert raw.startswith(b"HTTP/1.1 200 ")
    # The generated requests were both accepted and refused, often.
    assert seen["last reached"] > 20 and seen["refused"] > 20, seen
