"""Cooperative TLS: real handshakes on 127.0.0.1 with certificates made at test time."""

from __future__ import annotations

import hashlib
import os
import socket as stdlib_socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import corun.patches.socket as cosocket
import corun.patches.ssl as cossl
import pytest
import trustme

import corun

from ..conftest import run_patched, run_python

# -- certificates and helpers -------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def pem_dir(ca: trustme.CA, server_cert: trustme.LeafCert) -> Iterator[Path]:
    """The CA and the server's chain as PEM files, for code in other processes."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d)
        ca.cert_pem.write_to_path(str(path / "ca.pem"))
        server_cert.private_key_and_cert_chain_pem.write_to_path(str(path / "server.pem"))
        yield path


def server_context(cert: trustme.LeafCert, **settings: Any) -> cossl.SSLContext:
    ctx = cossl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    for name, value in settings.items():
        setattr(ctx, name, value)
    return ctx


def client_context(ca: trustme.CA, **settings: Any) -> cossl.SSLContext:
    ctx = cossl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    for name, value in settings.items():
        setattr(ctx, name, value)
    return ctx


@pytest.fixture
def lsock() -> Iterator[cosocket.socket]:
    """A cooperative listening socket on 127.0.0.1, closed after the test."""
    with cosocket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


def serve(
    lsock: cosocket.socket, ctx: ssl.SSLContext, handle: Callable[[Any], Any], count: int
) -> corun.Greenlet:
    """Accept ``count`` connections, each handshaken and handled in its own task."""

    def one(conn: Any) -> Any:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            return handle(tls)

    def loop() -> list[Any]:
        tasks = []
        for _ in range(count):
            conn, _addr = lsock.accept()
            tasks.append(corun.spawn(one, conn))
        corun.joinall(tasks, raise_error=True)
        return [t.value for t in tasks]

    return corun.spawn(loop)


def connect(lsock: cosocket.socket, ctx: ssl.SSLContext, **kwargs: Any) -> cossl.SSLSocket:
    sock = cosocket.create_connection(lsock.getsockname())
    return ctx.wrap_socket(sock, server_hostname=kwargs.pop("server_hostname", "localhost"), **kwargs)


def recv_exactly(sock: Any, n: int) -> bytes:
    chunks = []
    while n:
        data = sock.recv(min(n, 65536))
        assert data, "peer closed early"
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


# -- the classes ----------------------------------------------------------------


def test_wrap_socket_returns_a_cooperative_socket_that_is_still_an_ssl_socket(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: tls.recv(10), 1)
    with connect(lsock, client_context(ca)) as tls:
        assert type(tls) is cossl.SSLSocket
        assert isinstance(tls, ssl.SSLSocket)
        assert isinstance(tls, cosocket.socket)
        assert isinstance(tls, stdlib_socket.socket)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
        tls.sendall(b"hello")
    assert server.get(timeout=5) == [b"hello"]


def test_the_public_constructor_stays_closed() -> None:
    with pytest.raises(TypeError, match="does not have a public constructor"):
        cossl.SSLSocket()


# -- concurrency ------------------------------------------------------------------


def test_twenty_clients_overlap_against_a_slow_tls_echo_server(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:

    def echo_slowly(tls: Any) -> None:
        line = tls.recv(100)
        corun.sleep(0.3)
        tls.sendall(line.upper())

    server = serve(lsock, server_context(server_cert), echo_slowly, 20)
    ctx = client_context(ca)

    def client(i: int) -> bytes:
        with connect(lsock, ctx) as tls:
            tls.sendall(b"client %d" % i)
            return tls.recv(100)

    start = time.monotonic()
    clients = [corun.spawn(client, i) for i in range(20)]
    corun.joinall(clients, raise_error=True)
    elapsed = time.monotonic() - start
    server.get(timeout=5)
    assert [c.value for c in clients] == [b"CLIENT %d" % i for i in range(20)]
    # One after another this takes 20 x 0.3 = 6 s.
    assert elapsed < 2.0


def test_handshake_timeout_against_a_silent_peer_leaves_other_tasks_running(
    lsock: cosocket.socket, ca: trustme.CA
) -> None:
    ticks = []

    def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            corun.sleep(0.05)

    tick_task = corun.spawn(ticker)
    sock = cosocket.create_connection(lsock.getsockname())  # accepted by the kernel; nobody speaks TLS
    sock.settimeout(0.5)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake operation timed out"):
        client_context(ca).wrap_socket(sock, server_hostname="localhost")
    elapsed = time.monotonic() - start
    tick_task.kill()
    assert 0.45 <= elapsed < 2.0
    # The ticker kept running during the handshake (about 10 ticks in 0.5 s).
    assert len([t for t in ticks if t >= start]) >= 5
    assert sock.fileno() == -1  # wrap_socket took over the fd and closed it on failure


def test_stdlib_reports_the_same_handshake_timeout(ca: trustme.CA) -> None:
    """The error the cooperative socket raises is the one a blocking stdlib socket raises."""
    with stdlib_socket.create_server(("127.0.0.1", 0)) as silent:
        sock = stdlib_socket.create_connection(silent.getsockname())
        sock.settimeout(0.2)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(ctx)
        with pytest.raises(TimeoutError, match="handshake operation timed out"):
            ctx.wrap_socket(sock, server_hostname="localhost")


def test_read_timeout_and_nonblocking_read(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    done = corun.Event()

    def wait_for_done(tls: Any) -> None:
        done.wait()

    server = serve(lsock, server_context(server_cert), wait_for_done, 1)
    with connect(lsock, client_context(ca)) as tls:
        tls.settimeout(0.2)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="read operation timed out"):
            tls.recv(10)
        assert time.monotonic() - start >= 0.15
        tls.setblocking(False)
        with pytest.raises(ssl.SSLWantReadError):
            tls.recv(10)
    done.set()
    server.get(timeout=5)


def test_timeout_attribute_reads_what_gettimeout_returns(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: tls.recv(10), 1)
    plain = cosocket.create_connection(lsock.getsockname(), timeout=2.5)
    with client_context(ca).wrap_socket(plain, server_hostname="localhost") as tls:
        assert tls.timeout == 2.5 == tls.gettimeout()
        tls.settimeout(None)
        assert tls.timeout is None
        tls.sendall(b"x")
        tls.setblocking(False)
        assert tls.timeout == 0.0
    assert server.get(timeout=5) == [b"x"]


def test_handshake_on_connect_refuses_a_nonblocking_socket(lsock: cosocket.socket, ca: trustme.CA) -> None:
    sock = cosocket.create_connection(lsock.getsockname())
    sock.setblocking(False)
    with pytest.raises(ValueError, match="non-blocking"):
        client_context(ca).wrap_socket(sock, server_hostname="localhost")
    assert sock.fileno() == -1  # detached into the TLS socket, which closed on the error


@pytest.mark.parametrize("how", ["by hand", "block=True"])
def test_handshake_of_a_nonblocking_socket(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert, how: str
) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: tls.recv(10), 1)
    sock = cosocket.create_connection(lsock.getsockname())
    sock.setblocking(False)
    tls = client_context(ca).wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False)
    if how == "by hand":
        waits = 0
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                corun.hub.wait_readable(tls.fileno())
            except ssl.SSLWantWriteError:
                corun.hub.wait_writable(tls.fileno())
            waits += 1
        assert waits >= 1  # the server's reply could not be there at once
    else:
        tls.do_handshake(block=True)
    assert tls.gettimeout() == 0.0
    assert tls.version() is not None
    tls.setblocking(True)
    tls.sendall(b"done")
    assert server.get(timeout=5) == [b"done"]
    tls.close()


# -- features ---------------------------------------------------------------------


def test_unwrap_then_talk_in_plaintext(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:

    def server_side(tls: Any) -> bytes:
        assert tls.recv(100) == b"secret"
        assert tls.recv(100) == b""  # the client's close_notify
        plain = tls.unwrap()
        ping = plain.recv(100)
        plain.sendall(b"plain pong")
        return ping

    server = serve(lsock, server_context(server_cert), server_side, 1)
    tls = connect(lsock, client_context(ca))
    tls.sendall(b"secret")
    plain = tls.unwrap()
    assert plain is tls  # the stdlib returns the same socket object, now without TLS
    assert plain.version() is None
    plain.sendall(b"plain ping")
    assert recv_exactly(plain, 10) == b"plain pong"
    assert server.get(timeout=5) == [b"plain ping"]
    with pytest.raises(ValueError, match="No SSL wrapper"):
        plain.unwrap()
    plain.close()


def test_sni_callback_sees_the_server_name(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    seen = []
    ctx = server_context(server_cert)

    def on_sni(tls: Any, name: str | None, context: ssl.SSLContext) -> None:
        seen.append((type(tls), name, context is ctx))

    ctx.sni_callback = on_sni
    # A wrapped listening socket: accept() hands out handshaken TLS sockets.
    tls_listener = ctx.wrap_socket(lsock, server_side=True)

    def accept_one() -> bytes:
        conn, _ = tls_listener.accept()
        with conn:
            assert type(conn) is cossl.SSLSocket
            return conn.recv(10)

    server = corun.spawn(accept_one)
    with connect(tls_listener, client_context(ca), server_hostname="localhost") as tls:
        assert tls.server_hostname == "localhost"
        tls.sendall(b"hi")
    assert server.get(timeout=5) == b"hi"
    assert seen == [(cossl.SSLSocket, "localhost", True)]
    tls_listener.close()


def test_session_reuse_on_a_second_connection(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: tls.sendall(b"ok"), 2)
    # TLS 1.2 makes the session available right after the handshake.
    ctx = client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)
    with connect(lsock, ctx) as first:
        assert first.recv(2) == b"ok"
        assert first.session_reused is False
        session = first.session
    assert session is not None
    with connect(lsock, ctx, session=session) as second:
        assert second.recv(2) == b"ok"
        assert second.session_reused is True
        assert second.session.id == session.id
    server.get(timeout=5)


def test_makefile_reads_and_writes_lines(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:

    def line_server(tls: Any) -> list[bytes]:
        with tls.makefile("rwb") as f:
            got = [f.readline(), f.readline()]
            f.write(b"first reply\nsecond reply\n")
            f.flush()
        return got

    server = serve(lsock, server_context(server_cert), line_server, 1)
    with connect(lsock, client_context(ca)) as tls:
        w = tls.makefile("wb")
        w.write(b"one\ntwo\n")
        w.flush()
        with tls.makefile("r", encoding="ascii") as r:
            assert r.readline() == "first reply\n"
            assert r.readline() == "second reply\n"
        w.close()
    assert server.get(timeout=5) == [[b"one\n", b"two\n"]]


def test_sendall_of_five_megabytes_while_the_server_reads(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    payload = os.urandom(5 * 1024 * 1024)

    def digest_all(tls: Any) -> None:
        h = hashlib.sha256()
        left = len(payload)
        while left:
            data = tls.recv(min(left, 65536))
            assert data, "client closed early"
            h.update(data)
            left -= len(data)
        tls.sendall(h.hexdigest().encode())

    server = serve(lsock, server_context(server_cert), digest_all, 1)
    with connect(lsock, client_context(ca)) as tls:
        tls.settimeout(10)
        assert tls.sendall(payload) is None
        assert recv_exactly(tls, 64) == hashlib.sha256(payload).hexdigest().encode()
    server.get(timeout=10)


def test_sendfile_falls_back_to_send(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert, tmp_path: Path
) -> None:
    content = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(content)
    server = serve(lsock, server_context(server_cert), lambda tls: recv_exactly(tls, 1000), 1)
    with connect(lsock, client_context(ca)) as tls, path.open("rb") as f:
        assert tls.sendfile(f, offset=100, count=1000) == 1000
        assert f.tell() == 1100
    assert server.get(timeout=5) == [content[100:1100]]


def test_pending_counts_decrypted_bytes_not_yet_read(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    done = corun.Event()

    def one_record(tls: Any) -> None:
        tls.sendall(b"x" * 100)  # one TLS record
        done.wait()

    server = serve(lsock, server_context(server_cert), one_record, 1)
    with connect(lsock, client_context(ca)) as tls:
        assert tls.pending() == 0
        assert tls.recv(10) == b"x" * 10
        assert tls.pending() == 90
        assert tls.recv(1000) == b"x" * 90
        assert tls.pending() == 0
    done.set()
    server.get(timeout=5)


@pytest.mark.parametrize("suppress", [True, False])
def test_ragged_eof(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert, suppress: bool
) -> None:
    """A peer that drops TCP without close_notify: b"" if suppressed, else SSLEOFError."""
    ctx = server_context(server_cert)

    def drop(tls: Any) -> None:
        tls.sendall(b"last")
        # close() sends no close_notify: the client sees a bare TCP FIN.

    server = serve(lsock, ctx, drop, 1)
    with connect(lsock, client_context(ca), suppress_ragged_eofs=suppress) as tls:
        assert recv_exactly(tls, 4) == b"last"
        server.get(timeout=5)
        if suppress:
            assert tls.recv(10) == b""
            assert tls.recv_into(bytearray(10)) == 0
        else:
            with pytest.raises(ssl.SSLEOFError):
                tls.recv(10)


def test_connect_on_a_wrapped_unconnected_socket(
    lsock: cosocket.socket, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    """wrap first, connect later: connect() runs the handshake cooperatively."""
    server = serve(lsock, server_context(server_cert), lambda tls: tls.recv(10), 1)
    sock = cosocket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
    tls = client_context(ca).wrap_socket(sock, server_hostname="localhost")
    assert tls.version() is None  # no handshake yet
    tls.settimeout(5)
    tls.connect(lsock.getsockname())
    assert tls.version() is not None
    tls.sendall(b"later")
    assert server.get(timeout=5) == [b"later"]
    tls.close()


def test_get_server_certificate(lsock: cosocket.socket, server_cert: trustme.LeafCert, pem_dir: Path) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: None, 1)
    pem = cossl.get_server_certificate(lsock.getsockname(), ca_certs=str(pem_dir / "ca.pem"), timeout=5)
    server.get(timeout=5)
    expected = server_cert.cert_chain_pems[0].bytes().decode()
    assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(expected)


@pytest.mark.skipif(not hasattr(ssl, "wrap_socket"), reason="ssl.wrap_socket was removed in Python 3.12")
def test_module_wrap_socket(lsock: cosocket.socket, server_cert: trustme.LeafCert) -> None:
    server = serve(lsock, server_context(server_cert), lambda tls: tls.recv(10), 1)
    sock = cosocket.create_connection(lsock.getsockname())
    # The stdlib warns twice here: for wrap_socket and for its PROTOCOL_TLS default.
    with pytest.warns(DeprecationWarning) as warned:
        tls = cossl.wrap_socket(sock)  # type: ignore[attr-defined]
    assert any("wrap_socket" in str(w.message) for w in warned)
    assert type(tls) is cossl.SSLSocket
    tls.sendall(b"old api")
    assert server.get(timeout=5) == [b"old api"]
    tls.close()


# -- patching ---------------------------------------------------------------------


def test_context_properties_set_after_late_patching_do_not_recurse() -> None:
    proc = run_python(
        """
        import socket, ssl, warnings
        early = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)   # the original class

        class EarlySubclass(ssl.SSLContext):   # a library's, defined before patching
            pass

        # The bug this guards against: a plain subclass in the module global
        # makes every property setter find itself again.
        class Naive(ssl.SSLContext):
            pass
        original = ssl.SSLContext
        ssl.SSLContext = Naive
        try:
            early.options |= ssl.OP_NO_TICKET
        except RecursionError:
            print("naive: RecursionError")
        ssl.SSLContext = original

        from corun import monkey
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", monkey.MonkeyPatchWarning)  # it names EarlySubclass
            monkey.patch_all()
        import corun.patches.ssl as cossl
        assert ssl.SSLContext is cossl.SSLContext and ssl.SSLSocket is cossl.SSLSocket

        late = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        default = ssl.create_default_context()
        assert type(late) is cossl.SSLContext and type(default) is cossl.SSLContext
        assert type(early) is original

        def on_message(*args):
            pass

        for ctx in (early, late, default, EarlySubclass(ssl.PROTOCOL_TLS_CLIENT)):
            ctx.options |= ssl.OP_NO_TICKET
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.maximum_version = ssl.TLSVersion.TLSv1_3
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT
            ctx._msg_callback = on_message
            assert ctx.options & ssl.OP_NO_TICKET
            assert isinstance(ctx.options, ssl.Options)
            assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
            assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3
            assert ctx.verify_mode is ssl.CERT_NONE
            assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
            # The stdlib setters' own logic still runs: the message callback
            # is wrapped, and SSLv3 as the minimum clears OP_NO_SSLv3.
            assert ctx._msg_callback is on_message
            ctx._msg_callback = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.SSLv3
            assert not ctx.options & ssl.OP_NO_SSLv3

            # Contexts made from classes of before patching wrap cooperatively too.
            wrapped = ctx.wrap_socket(socket.socket(), do_handshake_on_connect=False)
            assert type(wrapped) is cossl.SSLSocket, type(wrapped)
            wrapped.close()
        print("patched: ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["naive: RecursionError", "patched: ok"]


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.3)
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_urlopen_https_in_a_patched_process(server_cert: trustme.LeafCert, pem_dir: Path) -> None:
    """Unmodified urllib under patching: ten HTTPS requests to a server that takes 0.3 s each overlap."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        proc = run_patched(
            """
            import ssl, sys, time, urllib.request
            import corun
            import corun.patches.ssl as cossl
            port, cafile = int(sys.argv[1]), sys.argv[2]
            ctx = ssl.create_default_context(cafile=cafile)
            assert type(ctx) is cossl.SSLContext

            def fetch(i):
                with urllib.request.urlopen(f"https://localhost:{port}/{i}", context=ctx, timeout=10) as r:
                    return r.read().decode()

            start = time.monotonic()
            tasks = [corun.spawn(fetch, i) for i in range(10)]
            corun.joinall(tasks, raise_error=True)
            print(time.monotonic() - start)
            print(",".join(t.value for t in tasks))
            """,
            str(httpd.server_address[1]),
            str(pem_dir / "ca.pem"),
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert proc.returncode == 0, proc.stderr
    elapsed, bodies = proc.stdout.split("\n")[:2]
    assert bodies == ",".join(f"hello /{i}" for i in range(10))
    assert float(elapsed) < 1.5  # one after another: 10 x 0.3 = 3 s


def test_get_server_certificate_of_stdlib_under_patching(
    server_cert: trustme.LeafCert, pem_dir: Path
) -> None:
    """``ssl.get_server_certificate`` in a patched process is the cooperative one."""
    proc = run_patched(
        """
        import socket, ssl, sys
        import corun
        import corun.patches.ssl as cossl
        assert ssl.get_server_certificate is cossl.get_server_certificate
        ctx = cossl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1])
        lsock = socket.create_server(("127.0.0.1", 0))

        def serve_one():
            conn, _ = lsock.accept()
            ctx.wrap_socket(conn, server_side=True).close()

        server = corun.spawn(serve_one)
        pem = ssl.get_server_certificate(lsock.getsockname(), ca_certs=sys.argv[2])
        server.get()
        print(pem.strip().splitlines()[0])
        """,
        str(pem_dir / "server.pem"),
        str(pem_dir / "ca.pem"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "-----BEGIN CERTIFICATE-----"
