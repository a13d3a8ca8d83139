"""The cooperative socket: stdlib timeout semantics over a non-blocking OS socket, on 127.0.0.1."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket as stdlib_socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent
from typing import Any

import corun.patches.socket as cosocket
import pytest

import corun
from corun._fdmodes import blocking_for_its_owner
from corun.hub import Hub

from ..conftest import run_python

LOCAL = "127.0.0.1"


# -- helpers ------------------------------------------------------------------


@contextmanager
def tcp_pair(bufsize: int | None = None) -> Iterator[tuple[cosocket.socket, cosocket.socket]]:
    """Two connected cooperative TCP sockets on 127.0.0.1: (client, server side).

    With ``bufsize``, both kernel buffers are that small, so a sender soon
    has to wait for its reader.
    """
    listener = cosocket.socket()
    client = cosocket.socket()
    try:
        if bufsize:
            for s in (listener, client):
                s.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, bufsize)
                s.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, bufsize)
        listener.bind((LOCAL, 0))
        listener.listen(1)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    except BaseException:
        client.close()
        raise
    finally:
        listener.close()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with stdlib_socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Ticker:
    """A task counting how often it got to run: proof that the hub was not blocked."""

    def __init__(self, interval: float = 0.01) -> None:
        self.ticks = 0
        self.interval = interval
        self.task = corun.spawn(self._run)

    def _run(self) -> None:
        while True:
            corun.sleep(self.interval)
            self.ticks += 1

    def stop(self) -> int:
        self.task.kill()
        return self.ticks


@contextmanager
def delaying_line_server(delay: float) -> Iterator[tuple[str, int]]:
    """A threaded stdlib server (real OS threads) that answers each line after ``delay`` seconds."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            time.sleep(delay)
            self.wfile.write(b"re: " + line)

    class Server(socketserver.ThreadingTCPServer):
        request_queue_size = 64  # all clients at once: none waits for a SYN retry
        daemon_threads = True

    server = Server((LOCAL, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the module ---------------------------------------------------------------


def test_module_declares_what_it_patches() -> None:
    assert cosocket.__target__ == "socket"
    assert cosocket.__implements__ == ["close", "socket"]
    for name in cosocket.__all__:
        assert hasattr(stdlib_socket, name), name
        assert getattr(cosocket, name).__module__ == "corun.patches.socket", name


def test_is_a_stdlib_socket_on_a_non_blocking_fd() -> None:
    with cosocket.socket() as s:
        assert isinstance(s, stdlib_socket.socket)
        assert isinstance(s, stdlib_socket.SocketType)
        assert s.family == stdlib_socket.AF_INET and s.type == stdlib_socket.SOCK_STREAM
        assert s.gettimeout() is None and s.getblocking()
        assert os.get_blocking(s.fileno()) is False
        s.settimeout(None)
        assert os.get_blocking(s.fileno()) is False


def test_repr_names_the_cooperative_class() -> None:
    with tcp_pair() as (a, _b):
        text = repr(a)
        assert text.startswith("<corun.patches.socket.socket fd=")
        assert f"fd={a.fileno()}" in text
        assert f"laddr={a.getsockname()}" in text and f"raddr={a.getpeername()}" in text
    assert "[closed]" in repr(a)


# -- timeouts -----------------------------------------------------------------


def test_timeout_settings_report_what_was_set() -> None:
    with cosocket.socket() as s:
        s.settimeout(2)
        assert s.gettimeout() == 2.0 and s.getblocking()
        s.setblocking(False)
        assert s.gettimeout() == 0.0 and not s.getblocking()
        s.setblocking(True)
        assert s.gettimeout() is None and s.getblocking()
        s.settimeout(0.25)
        with pytest.raises(ValueError):
            s.settimeout(-1)
        with pytest.raises(TypeError):
            s.settimeout("soon")  # type: ignore[arg-type]
        assert s.gettimeout() == 0.25  # unchanged by the bad values
        assert os.get_blocking(s.fileno()) is False


def test_timeout_attribute_reads_what_gettimeout_returns() -> None:
    # The C attribute would read the OS socket's timeout, always 0.0 here.
    with cosocket.socket() as s:
        assert s.timeout is None
        s.settimeout(2.5)
        assert s.timeout == 2.5
        s.setblocking(False)
        assert s.timeout == 0.0
        with stdlib_socket.socket() as plain:
            for attempt in (lambda x: setattr(x, "timeout", 1.0), lambda x: delattr(x, "timeout")):
                with pytest.raises(AttributeError) as ours:
                    attempt(s)
                with pytest.raises(AttributeError) as theirs:
                    attempt(plain)
                assert str(ours.value) == str(theirs.value)
        assert s.timeout == 0.0
    assert stdlib_socket.timeout is TimeoutError  # the module's exception alias is left alone
    with tcp_pair() as (client, server):
        client.settimeout(1.25)
        assert client.timeout == 1.25 and server.timeout is None
        with client.dup() as twin:
            assert twin.timeout == 1.25
    with cosocket.create_server((LOCAL, 0)) as listener:
        with cosocket.create_connection(listener.getsockname(), timeout=3) as other:
            assert other.timeout == 3.0
        stdlib_socket.setdefaulttimeout(0.75)
        try:
            accepted, _ = listener.accept()
            with accepted, cosocket.socket() as fresh:
                assert accepted.timeout == 0.75 and fresh.timeout == 0.75
        finally:
            stdlib_socket.setdefaulttimeout(None)


def test_sock_nonblock_type_means_timeout_zero() -> None:
    if not hasattr(stdlib_socket, "SOCK_NONBLOCK"):
        pytest.skip("SOCK_NONBLOCK is Linux only")
    with cosocket.socket(type=stdlib_socket.SOCK_STREAM | stdlib_socket.SOCK_NONBLOCK) as s:
        assert s.gettimeout() == 0.0
        assert s.type == stdlib_socket.SOCK_STREAM


def test_timeout_zero_raises_blocking_io_error_at_once() -> None:
    with tcp_pair() as (a, _b):
        a.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            a.recv(10)
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            a.recv_into(bytearray(10))


def test_timeout_t_raises_timed_out_while_other_tasks_run() -> None:
    with tcp_pair() as (a, _b):
        a.settimeout(0.3)
        ticker = Ticker()
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            a.recv(10)
        elapsed = time.monotonic() - start
        ticks = ticker.stop()
    assert 0.29 <= elapsed < 1.5
    assert ticks >= 5


def test_timeout_none_waits_cooperatively_until_data_comes() -> None:
    with tcp_pair() as (a, b):
        a.settimeout(None)

        def later() -> None:
            corun.sleep(0.2)
            b.sendall(b"late")

        sender = corun.spawn(later)
        ticker = Ticker()
        start = time.monotonic()
        assert a.recv(10) == b"late"
        assert time.monotonic() - start >= 0.19
        assert ticker.stop() >= 3
        sender.get()


def test_msg_dontwait_makes_one_call_on_a_blocking_socket() -> None:
    with tcp_pair() as (a, b):
        ticker = Ticker()
        with pytest.raises(BlockingIOError):
            a.recv(10, stdlib_socket.MSG_DONTWAIT)
        assert ticker.ticks == 0  # it did not wait
        a.settimeout(0.2)
        start = time.monotonic()
        with pytest.raises(TimeoutError):  # a socket with a timeout waits, as in the stdlib
            a.recv(10, stdlib_socket.MSG_DONTWAIT)
        assert time.monotonic() - start >= 0.19
        ticker.stop()
        b.sendall(b"now")
        a.settimeout(None)
        assert a.recv(10) == b"now"


def test_default_timeout_applies_to_new_and_accepted_sockets() -> None:
    listener = None
    stdlib_socket.setdefaulttimeout(0.25)
    try:
        listener = cosocket.socket()
        client = cosocket.socket()
    finally:
        stdlib_socket.setdefaulttimeout(None)
    try:
        assert listener.gettimeout() == 0.25 and client.gettimeout() == 0.25
        assert os.get_blocking(listener.fileno()) is False
        listener.bind((LOCAL, 0))
        listener.listen(1)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            listener.accept()
        assert 0.24 <= time.monotonic() - start < 1.5
        client.connect(listener.getsockname())
        stdlib_socket.setdefaulttimeout(0.5)
        try:
            conn, _ = listener.accept()
        finally:
            stdlib_socket.setdefaulttimeout(None)
        with conn:
            assert isinstance(conn, cosocket.socket)
            assert conn.gettimeout() == 0.5
            assert os.get_blocking(conn.fileno()) is False
    finally:
        listener.close()
        client.close()


def test_accept_timeout_zero_and_blocking_accept() -> None:
    with cosocket.create_server((LOCAL, 0)) as listener:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
        listener.setblocking(True)

        def connect_later() -> cosocket.socket:
            corun.sleep(0.1)
            return cosocket.create_connection(listener.getsockname())

        client_task = corun.spawn(connect_later)
        conn, address = listener.accept()
        with conn, client_task.get() as client:
            assert address == client.getsockname()
            assert isinstance(conn, cosocket.socket) and conn.gettimeout() is None


# -- connecting ---------------------------------------------------------------


def test_connect_refused() -> None:
    port = closed_port()
    with cosocket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect((LOCAL, port))
    with cosocket.socket() as s:
        assert s.connect_ex((LOCAL, port)) == errno.ECONNREFUSED


def test_connect_non_blocking_then_finish() -> None:
    with cosocket.create_server((LOCAL, 0)) as listener, cosocket.socket() as s:
        s.setblocking(False)
        try:
            s.connect(listener.getsockname())
        except BlockingIOError as exc:
            assert exc.errno == errno.EINPROGRESS
        corun.hub.wait_writable(s.fileno(), timeout=2)
        assert s.connect_ex(listener.getsockname()) in (0, errno.EISCONN)
        conn, _ = listener.accept()
        with conn:
            assert conn.getpeername() == s.getsockname()


def test_connect_times_out_against_a_full_backlog() -> None:
    # A listener that never accepts and has a backlog of 0: once its queue
    # is full, the kernel drops further SYNs and connects hang.
    with cosocket.socket() as listener:
        listener.bind((LOCAL, 0))
        listener.listen(0)
        address = listener.getsockname()
        clients: list[cosocket.socket] = []
        try:
            for _ in range(10):
                s = cosocket.socket()
                clients.append(s)
                s.settimeout(0.3)
                start = time.monotonic()
                try:
                    s.connect(address)
                except TimeoutError as exc:
                    assert str(exc) == "timed out"
                    assert 0.29 <= time.monotonic() - start < 1.5
                    break
            else:
                pytest.fail("no connect ever had to wait for the full backlog")
            s = cosocket.socket()
            clients.append(s)
            s.settimeout(0.2)
            assert s.connect_ex(address) == errno.EWOULDBLOCK  # the stdlib's answer on timeout
        finally:
            for s in clients:
                s.close()


def test_connect_looks_host_names_up_through_the_module_getaddrinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up = []
    real_getaddrinfo = stdlib_socket.getaddrinfo

    def recording_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        looked_up.append(args)
        return real_getaddrinfo(*args, **kwargs)

    monkeypatch.setattr(stdlib_socket, "getaddrinfo", recording_getaddrinfo)
    with cosocket.create_server((LOCAL, 0)) as listener, cosocket.socket() as s:
        port = listener.getsockname()[1]
        s.connect(("localhost", port))
        assert s.getpeername() == (LOCAL, port)
        with cosocket.socket() as literal:
            literal.connect((LOCAL, port))  # a literal address is not looked up
        assert looked_up == [("localhost", None, stdlib_socket.AF_INET)]
        for _ in range(2):
            listener.accept()[0].close()


def test_create_connection() -> None:
    with cosocket.create_server((LOCAL, 0)) as listener:
        address = listener.getsockname()
        with cosocket.create_connection(address, timeout=1.5, source_address=(LOCAL, 0)) as c:
            assert isinstance(c, cosocket.socket)
            assert c.gettimeout() == 1.5 and c.getsockname()[0] == LOCAL
            conn, _ = listener.accept()
            conn.close()
        with cosocket.create_connection(address) as c:
            assert c.gettimeout() is None  # the default timeout
            listener.accept()[0].close()


def test_create_connection_errors() -> None:
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        cosocket.create_connection((LOCAL, port))
    with pytest.raises(Exception) as info:
        cosocket.create_connection((LOCAL, port), all_errors=True)
    group: Any = info.value
    assert type(group).__name__ == "ExceptionGroup"
    assert [type(e) for e in group.exceptions] == [ConnectionRefusedError]


def test_socketpair_fromfd_create_server_give_cooperative_sockets() -> None:
    a, b = cosocket.socketpair()
    with a, b:
        assert isinstance(a, cosocket.socket) and isinstance(b, cosocket.socket)
        assert a.family == stdlib_socket.AF_UNIX
        with cosocket.fromfd(a.fileno(), a.family, a.type) as c:
            assert isinstance(c, cosocket.socket) and c.fileno() != a.fileno()
            c.sendall(b"via dup")
            assert b.recv(10) == b"via dup"
    with cosocket.create_server((LOCAL, 0), backlog=5) as server:
        assert isinstance(server, cosocket.socket) and server.gettimeout() is None
        assert os.get_blocking(server.fileno()) is False


def test_dup_and_detach() -> None:
    with tcp_pair() as (a, b):
        a.settimeout(1.25)
        with a.dup() as d:
            assert isinstance(d, cosocket.socket) and d.gettimeout() == 1.25
            d.sendall(b"dup")
            assert b.recv(10) == b"dup"
        fd = b.detach()
        with cosocket.socket(fileno=fd) as again:
            a.sendall(b"detached")
            assert again.recv(10) == b"detached"


@pytest.mark.parametrize(("timeout", "blocking"), [(None, True), (1.25, False), (0.0, False)])
def test_detach_gives_the_fd_in_the_stdlibs_blocking_mode(timeout: float | None, blocking: bool) -> None:
    # The stdlib's socket is blocking at the OS level exactly while its timeout is None.
    original = stdlib_socket.socket()
    original.settimeout(timeout)
    assert os.get_blocking(original.fileno()) is blocking
    original.close()
    with tcp_pair() as (a, b):
        b.settimeout(timeout)
        assert os.get_blocking(b.fileno()) is False  # corun's own doing while it is a socket
        fd = b.detach()
        try:
            assert os.get_blocking(fd) is blocking
            assert not blocking_for_its_owner(fd)
            a.sendall(b"after detach")
            assert os.read(fd, 100) == b"after detach"
        finally:
            os.close(fd)


def test_fds_left_non_blocking_by_corun_alone_are_known_as_such() -> None:
    with tcp_pair() as (_, b):
        fd = b.fileno()
        assert blocking_for_its_owner(fd)  # timeout None: its owner expects blocking calls
        copy = os.dup(fd)  # the same open file, so the same O_NONBLOCK
        try:
            assert os.get_blocking(copy) is False
            assert blocking_for_its_owner(copy)
            b.settimeout(2.0)  # the stdlib's socket is non-blocking now too
            assert not blocking_for_its_owner(fd)
            assert not blocking_for_its_owner(copy)
            b.settimeout(None)
            assert blocking_for_its_owner(copy)
            with cosocket.socket(fileno=os.dup(fd)) as third:
                third.setblocking(False)
                assert blocking_for_its_owner(copy)  # b still expects blocking
            b.close()
            assert not blocking_for_its_owner(fd)
            assert not blocking_for_its_owner(copy)
        finally:
            os.close(copy)
    r, w = os.pipe()
    os.set_blocking(r, False)  # not a socket: the program's own choice
    try:
        with tcp_pair():
            assert not blocking_for_its_owner(r)
    finally:
        os.close(r)
        os.close(w)


# -- data ---------------------------------------------------------------------


def test_makefile_reads_and_writes_lines() -> None:
    with tcp_pair() as (a, b):
        reader = b.makefile("rb")
        writer = a.makefile("wb")

        def write_lines() -> None:
            for i in range(200):
                writer.write(b"line %d\n" % i)
                if i % 50 == 0:
                    writer.flush()
                    corun.sleep(0.01)  # the reader now waits for the rest
            writer.flush()

        task = corun.spawn(write_lines)
        lines = [reader.readline() for _ in range(200)]
        task.get()
        assert lines == [b"line %d\n" % i for i in range(200)]
        text_in = b.makefile("r", encoding="ascii", newline="")
        text_out = a.makefile("w", encoding="ascii", newline="")
        text_out.write("hello\r\n")
        text_out.flush()
        assert text_in.readline() == "hello\r\n"
        b.settimeout(0.2)
        with pytest.raises(TimeoutError):
            reader.readline()
        for f in (reader, writer, text_in, text_out):
            f.close()


def test_reads_after_a_short_read_return_what_the_stdlibs_would() -> None:
    # A short read makes the next blocking read wait for data before its call;
    # what each read returns or raises must not change.
    with tcp_pair() as (a, b):
        a.sendall(b"one")
        assert b.recv(100) == b"one"  # short: the buffer is empty now
        a.sendall(b"two")
        time.sleep(0.05)  # arrived before the next read
        assert b.recv(100) == b"two"

        def later() -> None:
            corun.sleep(0.1)
            a.sendall(b"three")

        sender = corun.spawn(later)
        assert b.recv(100) == b"three"  # arrives while the read waits
        sender.get()

        buf = bytearray(100)
        a.sendall(b"four")
        assert b.recv_into(buf) == 4 and buf[:4] == b"four"
        a.sendall(b"five")
        assert b.recv_into(memoryview(buf)[10:], 50) == 4 and buf[10:14] == b"five"

        # MSG_PEEK looks without waiting first, and leaves the data for the next read.
        a.sendall(b"six")
        time.sleep(0.05)
        assert b.recv(100, stdlib_socket.MSG_PEEK) == b"six"
        assert b.recv(100) == b"six"

        # Non-blocking after a short read: BlockingIOError at once, no wait.
        b.setblocking(False)
        ticker = Ticker()
        with pytest.raises(BlockingIOError):
            b.recv(100)
        with pytest.raises(BlockingIOError):
            b.recv_into(buf)
        assert ticker.ticks == 0

        # A timeout after a short read counts from the call, as before.
        a.sendall(b"seven")
        time.sleep(0.05)
        assert b.recv(100) == b"seven"
        b.settimeout(0.2)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            b.recv(100)
        assert 0.19 <= time.monotonic() - start < 1.5
        assert ticker.stop() >= 3

        # The peer's end of the stream after a short read: b"" (the fd stays readable).
        a.sendall(b"eight")
        a.shutdown(stdlib_socket.SHUT_WR)
        b.settimeout(None)
        assert b.recv(100) == b"eight"
        assert b.recv(100) == b""
        assert b.recv(100) == b""

    # Closed after a short read: the stdlib's EBADF.
    with tcp_pair() as (a, b):
        a.sendall(b"x")
        assert b.recv(100) == b"x"
        b.close()
        with pytest.raises(OSError) as info:
            b.recv(100)
        assert info.value.errno == errno.EBADF


def test_send_is_partial_and_sendall_sends_the_rest() -> None:
    with tcp_pair(bufsize=65536) as (a, b):
        data = os.urandom(1 << 16) * 64  # 4 MiB, far more than the buffers hold
        sent = a.send(data)
        assert 0 < sent < len(data)

        def read_all() -> bytes:
            chunks = []
            left = len(data)
            while left:
                chunk = b.recv(min(left, 1 << 16))
                assert chunk
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)

        reader = corun.spawn(read_all)
        a.sendall(memoryview(data)[sent:])
        assert reader.get(timeout=10) == data


def test_send_and_sendall_to_a_full_buffer_raise_or_wait_as_the_stdlibs_do() -> None:
    with tcp_pair(bufsize=65536) as (a, b):

        def fill() -> None:
            # Until the kernel takes not one more byte: the last sends are small,
            # so that no room is left that a short message would fit in.
            timeout = a.gettimeout()
            a.setblocking(False)
            for size in (65536, 1024, 1):
                try:
                    while True:
                        a.send(b"x" * size)
                except BlockingIOError:
                    pass
            a.settimeout(timeout)

        a.setblocking(False)
        for call in (a.send, a.sendall):
            fill()
            with pytest.raises(BlockingIOError):  # non-blocking: at once
                call(b"more")
        a.setblocking(True)
        ticker = Ticker()
        for call in (a.send, a.sendall):
            fill()
            with pytest.raises(BlockingIOError):  # MSG_DONTWAIT on a blocking socket: one call
                call(b"more", stdlib_socket.MSG_DONTWAIT)
        assert ticker.ticks == 0
        # With a timeout, sendall waits (letting other tasks run) and gives up in time; far more
        # than the buffers hold, as the kernel frees a little room now and then.
        a.settimeout(0.2)
        fill()
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            a.sendall(b"x" * (1 << 20))
        assert time.monotonic() - start >= 0.19
        assert ticker.stop() >= 2

        def drain() -> int:
            total = 0
            while chunk := b.recv(65536):
                total += len(chunk)
            return total

        # A blocking sendall to a full buffer waits for the reader, then returns.
        reader = corun.spawn(drain)
        a.settimeout(None)
        fill()
        a.sendall(b"last")
        a.shutdown(stdlib_socket.SHUT_WR)
        assert reader.get(timeout=10) > 65536


def test_sendall_50_megabytes_to_a_reader_task() -> None:
    data = os.urandom(1 << 20) * 50
    with tcp_pair() as (a, b):

        def read_and_hash() -> tuple[int, str]:
            digest = hashlib.sha256()
            buf = bytearray(1 << 18)
            view = memoryview(buf)
            total = 0
            while True:
                n = b.recv_into(buf)
                if not n:
                    return total, digest.hexdigest()
                digest.update(view[:n])
                total += n

        reader = corun.spawn(read_and_hash)
        a.sendall(data)
        a.shutdown(stdlib_socket.SHUT_WR)
        assert reader.get(timeout=30) == (len(data), hashlib.sha256(data).hexdigest())


def test_sendall_timeout_limits_the_whole_call() -> None:
    # The reader keeps taking a little, so each wait of the sender is short;
    # the stdlib's sendall still gives up once its timeout has passed in total.
    with tcp_pair(bufsize=32768) as (a, b):
        received = 0

        def slow_reader() -> None:
            nonlocal received
            while True:
                corun.sleep(0.02)
                chunk = b.recv(16384)
                if not chunk:
                    return
                received += len(chunk)

        reader = corun.spawn(slow_reader)
        a.settimeout(0.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            a.sendall(b"x" * (8 << 20))
        elapsed = time.monotonic() - start
        reader.kill()
    assert 0.49 <= elapsed < 1.5
    assert received > 100_000  # the reader kept making progress all along


def test_peer_reset_fails_only_the_task_reading_that_socket() -> None:
    with tcp_pair() as (a1, b1), tcp_pair() as (a2, b2):

        def read(sock: cosocket.socket) -> bytes | OSError:
            try:
                return sock.recv(10)
            except OSError as exc:
                return exc

        reset_reader = corun.spawn(read, b1)
        other_reader = corun.spawn(read, b2)
        ticker = Ticker()
        corun.sleep(0.05)
        # Closing with a zero linger time sends a reset instead of a FIN.
        a1.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0))
        a1.close()
        assert isinstance(reset_reader.get(timeout=2), ConnectionResetError)
        assert not other_reader.ready()
        a2.sendall(b"still ok")
        assert other_reader.get(timeout=2) == b"still ok"
        assert ticker.stop() >= 2


def test_half_close_lets_the_peer_read_eof_and_still_answer() -> None:
    with tcp_pair() as (a, b):

        def serve() -> None:
            request = b""
            while chunk := b.recv(4):
                request += chunk
            b.sendall(request.upper())
            b.shutdown(stdlib_socket.SHUT_WR)

        server = corun.spawn(serve)
        a.sendall(b"half closed")
        a.shutdown(stdlib_socket.SHUT_WR)
        reply = b""
        while chunk := a.recv(100):
            reply += chunk
        server.get()
        assert reply == b"HALF CLOSED"


def test_udp_datagrams_and_recvfrom_variants() -> None:
    with cosocket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as receiver:
        with cosocket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as sender:
            receiver.bind((LOCAL, 0))
            sender.bind((LOCAL, 0))
            waiting = corun.spawn(receiver.recvfrom, 100)
            corun.sleep(0.05)
            assert not waiting.ready()
            assert sender.sendto(b"one", receiver.getsockname()) == 3
            assert waiting.get(timeout=2) == (b"one", sender.getsockname())
            sender.sendto(b"two", 0, ("localhost", receiver.getsockname()[1]))
            buf = bytearray(10)
            assert receiver.recvfrom_into(buf) == (3, sender.getsockname())
            assert buf[:3] == b"two"
            sender.sendto(b"three", receiver.getsockname())
            assert receiver.recv_into(buf, 5) == 5 and buf[:5] == b"three"
            receiver.settimeout(0.1)
            with pytest.raises(TimeoutError):
                receiver.recvfrom(10)


def test_sendmsg_recvmsg_pass_file_descriptors() -> None:
    a, b = cosocket.socketpair()
    r, w = os.pipe()
    try:
        with a, b:
            receiving = corun.spawn(stdlib_socket.recv_fds, b, 100, 1)  # the stdlib calls b.recvmsg
            corun.sleep(0.05)
            assert not receiving.ready()
            stdlib_socket.send_fds(a, [b"here"], [w])  # and a.sendmsg
            data, fds, _flags, _addr = receiving.get(timeout=2)
            assert data == b"here" and len(fds) == 1
            os.write(fds[0], b"!")
            os.close(fds[0])
            assert os.read(r, 1) == b"!"
            buf = bytearray(4)
            a.sendmsg([b"ab", b"cd"])
            nbytes, _anc, _flags, _addr = b.recvmsg_into([buf])
            assert nbytes == 4 and buf == b"abcd"
    finally:
        os.close(r)
        os.close(w)


def test_sendfile_regular_file_with_offset_and_count(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    path = tmp_path / "payload"
    path.write_bytes(data)
    with tcp_pair(bufsize=65536) as (a, b):

        def read_exactly(n: int) -> bytes:
            out = bytearray()
            while len(out) < n:
                chunk = b.recv(n - len(out))
                assert chunk
                out += chunk
            return bytes(out)

        with path.open("rb") as f:
            reader = corun.spawn(read_exactly, len(data))
            assert a.sendfile(f) == len(data)
            assert reader.get(timeout=10) == data
            assert f.tell() == len(data)

            reader = corun.spawn(read_exactly, 1000)
            assert a.sendfile(f, 100, 1000) == 1000
            assert reader.get(timeout=10) == data[100:1100]
            assert f.tell() == 1100


def test_sendfile_falls_back_to_send_for_in_memory_files() -> None:
    with tcp_pair() as (a, b):
        assert a.sendfile(io.BytesIO(b"0123456789"), 2, 5) == 5
        assert b.recv(10) == b"23456"
        a.setblocking(False)
        with pytest.raises(ValueError):
            a.sendfile(io.BytesIO(b"x"))


# -- waiting tasks and closing --------------------------------------------------


def test_close_while_waiting_wakes_the_waiter_with_ebadf(hub: Hub) -> None:
    with tcp_pair() as (a, _b):
        fd = a.fileno()

        def read() -> bytes | OSError:
            try:
                return a.recv(10)
            except OSError as exc:
                return exc

        reader = corun.spawn(read)
        corun.sleep(0.05)
        assert hub.io.waiting == 1
        a.close()
        exc = reader.get(timeout=2)
    assert isinstance(exc, OSError) and exc.errno == errno.EBADF
    assert f"fd {fd}" in str(exc)
    assert hub.io.waiting == 0


def test_module_close_wakes_the_waiter_too() -> None:
    with tcp_pair() as (a, _b):
        reader = corun.spawn(a.recv, 10)
        corun.sleep(0.05)
        cosocket.close(a.detach())
        with pytest.raises(OSError) as info:
            reader.get(timeout=2)
        assert info.value.errno == errno.EBADF


def test_two_tasks_receiving_on_one_socket_each_get_data_as_threads_would() -> None:
    # CPython lets two threads block in recv() on one socket: each call
    # returns data or waits on.  So do two tasks.
    with tcp_pair() as (a, b):
        first = corun.spawn(a.recv, 10)
        second = corun.spawn(a.recv, 10)
        corun.sleep(0.05)
        b.sendall(b"one")
        corun.sleep(0.05)
        assert sum(g.ready() for g in (first, second)) == 1  # one got it, the other waits on
        b.sendall(b"two")
        assert sorted([first.get(timeout=2), second.get(timeout=2)]) == [b"one", b"two"]


def test_closing_a_socket_wakes_every_task_waiting_on_it() -> None:
    with tcp_pair() as (a, _):
        readers = [corun.spawn(a.recv, 10) for _ in range(3)]
        corun.sleep(0.05)
        a.close()
        corun.joinall(readers, timeout=2)
        for r in readers:
            assert isinstance(r.exception, OSError) and r.exception.errno == errno.EBADF, r.exception


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_fd_leak_after_1000_connections() -> None:
    with cosocket.create_server((LOCAL, 0), backlog=64) as listener:
        address = listener.getsockname()

        def echo_server() -> None:
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(conn.recv(16))

        server = corun.spawn(echo_server)
        corun.sleep(0)
        before = open_fds()
        for i in range(1000):
            with cosocket.create_connection(address) as c:
                c.sendall(b"%d" % i)
                assert c.recv(16) == b"%d" % i
        assert open_fds() == before
        server.kill()


def test_20_clients_of_a_slow_server_run_concurrently() -> None:
    with delaying_line_server(0.3) as address:

        def ask(i: int) -> bytes:
            with cosocket.create_connection(address, timeout=10) as c:
                c.sendall(b"question %d\n" % i)
                return c.makefile("rb").readline()

        start = time.monotonic()
        tasks = [corun.spawn(ask, i) for i in range(20)]
        corun.joinall(tasks, raise_error=True)
        elapsed = time.monotonic() - start
    assert [t.value for t in tasks] == [b"re: question %d\n" % i for i in range(20)]
    assert 0.29 <= elapsed < 2.0


# -- patched (fresh interpreters) -----------------------------------------------------


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.3)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _SlowHTTPServer(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


@contextmanager
def slow_http_server() -> Iterator[int]:
    server = _SlowHTTPServer((LOCAL, 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Patch by hand, as the contract says monkey does: every name in __implements__.
PATCH_BY_HAND = """
import socket
import corun.patches.socket as cosocket
for name in cosocket.__implements__:
    setattr(socket, name, getattr(cosocket, name))
"""


def test_patched_http_client_requests_run_concurrently() -> None:
    with slow_http_server() as port:
        proc = run_python(
            dedent(
                """
                import socket, sys, time
                from socket import create_connection as captured_before_patching
                original_socket_class = socket.socket
                """
            )
            + PATCH_BY_HAND
            + dedent(
                """
            import http.client
            import corun

            port = int(sys.argv[1])

            def fetch(i):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", f"/{i}")
                    sock = conn.sock
                    body = conn.getresponse().read()
                finally:
                    conn.close()
                return body, type(sock).__module__, isinstance(sock, original_socket_class)

            start = time.monotonic()
            tasks = [corun.spawn(fetch, i) for i in range(10)]
            corun.joinall(tasks, raise_error=True)
            print("elapsed", time.monotonic() - start)
            print("bodies", [t.value[0].decode() for t in tasks] == [f"/{i}" for i in range(10)])
            print("classes", {t.value[1] for t in tasks}, all(t.value[2] for t in tasks))
            with captured_before_patching(("127.0.0.1", port)) as s:
                print("captured", type(s).__module__)
            a, b = socket.socketpair()
            made = [a, b, socket.socket(), socket.fromfd(a.fileno(), a.family, a.type)]
            made.append(socket.create_server(("127.0.0.1", 0)))
            made.append(socket.create_connection(made[-1].getsockname()))
            print("made", {type(s).__module__ for s in made}, len(made))
            for s in made:
                s.close()
            print("stdlib_kept", socket.create_connection is captured_before_patching)
            """
            ),
            str(port),
        )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert float(lines["elapsed"]) < 1.5
    assert lines["bodies"] == "True"
    assert lines["classes"] == "{'corun.patches.socket'} True"
    assert lines["captured"] == "corun.patches.socket"
    assert lines["made"] == "{'corun.patches.socket'} 6"
    assert lines["stdlib_kept"] == "True"


def test_patched_socketserver_serves_clients_concurrently() -> None:
    proc = run_python(
        PATCH_BY_HAND
        + dedent(
            """
        import socketserver, time
        import corun

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline()
                corun.sleep(0.3)
                self.wfile.write(line.upper())

        socketserver.TCPServer.request_queue_size = 64  # no client waits for a SYN retry
        server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
        print("server socket", type(server.socket).__module__)

        def serve(n):
            for _ in range(n):
                request, address = server.get_request()
                corun.spawn(server.finish_request, request, address).link(lambda t, r=request: r.close())

        def ask(i):
            with socket.create_connection(server.server_address) as c:
                c.sendall(b"hello %d\\n" % i)
                return c.makefile("rb").readline()

        acceptor = corun.spawn(serve, 10)
        start = time.monotonic()
        clients = [corun.spawn(ask, i) for i in range(10)]
        corun.joinall(clients, raise_error=True)
        print("elapsed", time.monotonic() - start)
        print("answers", [c.value for c in clients] == [b"HELLO %d\\n" % i for i in range(10)])
        acceptor.join()
        server.server_close()
        """
        )
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert lines["server socket"] == "corun.patches.socket"
    assert float(lines["elapsed"]) < 1.5
    assert lines["answers"] == "True"


def test_a_socket_collected_unclosed_leaves_no_stale_registration() -> None:
    # The fd number of a socket dropped without close() is reused at once;
    # a wait on the new socket must still wake (the trusted registration of
    # the old one must not survive it).
    import gc
    import warnings

    from corun.patches.socket import socketpair

    a, b = socketpair()
    a.settimeout(2)
    b.sendall(b"x")
    assert a.recv(1) == b"x"
    reader = corun.spawn(a.recv, 1)
    corun.sleep(0)
    b.sendall(b"y")
    assert reader.get(timeout=2) == b"y"  # a registration is kept for a's fd
    old_fd = a.fileno()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del a, reader
        gc.collect()
    c, d = socketpair()
    try:
        new = c if c.fileno() == old_fd else d
        other = d if new is c else c
        assert new.fileno() == old_fd  # the number was reused
        new.settimeout(2)
        waiting = corun.spawn(new.recv, 1)
        corun.sleep(0)
        other.sendall(b"z")
        assert waiting.get(timeout=3) == b"z"
    finally:
        b.close()
        c.close()
        d.close()
