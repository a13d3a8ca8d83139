"""StreamServer and DatagramServer against real sockets on 127.0.0.1 (and unix sockets).

Clients are cooperative sockets in tasks of the test's own hub, except where a
stdlib client in an OS thread is the more honest witness (TLS).  Concurrency
is proven by ordering (a handler held on an event while others are served),
with timings only as wide bounds.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket as stdsocket
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from corun.patches.socket import create_connection
from corun.patches.socket import socket as cosocket

import corun
from corun.greenlet import GreenletExit
from corun.pool import Pool
from corun.server import DatagramServer, StreamServer

from .conftest import now, recv_all, run_patched, run_python

# Waits for time take almost none on the virtual clock.  The sockets are real,
# all in this process: the hub gives the kernel 50 ms to deliver on loopback
# before it jumps, time enough on a busy machine.
pytestmark = pytest.mark.corun(clock="virtual", autojump_threshold=0.05)


LOCAL = ("127.0.0.1", 0)


def echo(sock: Any, address: Any) -> None:
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(data)


def connect(address: Any) -> Any:
    """A connected cooperative client socket, with a timeout so a failing test cannot hang."""
    if isinstance(address, str):
        sock = cosocket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(address)
    else:
        sock = create_connection(address, timeout=5)
    return sock


def exchange(address: Any, payload: bytes) -> bytes:
    """Send ``payload``, shut down writing, and return everything the server sent back."""
    with connect(address) as sock:
        sock.sendall(payload)
        sock.shutdown(stdsocket.SHUT_WR)
        return recv_all(sock)


def ask(sock: Any, line: bytes) -> bytes:
    """Send one line and read one line back on an open connection."""
    sock.sendall(line + b"\n")
    return read_line(sock)


def read_line(sock: Any) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return line


@contextmanager
def serving(server: Any) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- serving many clients ---------------------------------------------------------


def test_many_concurrent_clients_each_get_their_own_bytes_back() -> None:
    with serving(StreamServer(LOCAL, echo)) as server:
        payloads = [os.urandom(1000 + 37 * n) for n in range(200)]
        tasks = [corun.spawn(exchange, server.address, p) for p in payloads]
        corun.joinall(tasks, timeout=10, raise_error=True)
        assert [t.value for t in tasks] == payloads


def test_a_slow_handler_does_not_hold_up_the_others() -> None:
    release = corun.Event()

    def handle(sock: Any, address: Any) -> None:
        line = read_line(sock)
        if line == b"slow\n":
            release.wait(5)
            sock.sendall(b"slow done\n")
        else:
            sock.sendall(b"fast " + line)

    with serving(StreamServer(LOCAL, handle)) as server:
        slow = connect(server.address)
        slow.sendall(b"slow\n")
        slow_reply = corun.spawn(read_line, slow)
        corun.sleep(0.05)  # the slow handler has its line and is waiting now
        started = now()
        fast = [corun.spawn(exchange, server.address, b"%d\n" % n) for n in range(20)]
        corun.joinall(fast, timeout=5, raise_error=True)
        elapsed = now() - started
        # Every fast client was answered while the slow handler was still held.
        assert [t.value for t in fast] == [b"fast %d\n" % n for n in range(20)]
        assert not slow_reply.dead
        assert elapsed < 2
        release.set()
        assert slow_reply.get(timeout=5) == b"slow done\n"
        slow.close()


def test_a_failing_handler_is_logged_and_closes_only_its_connection(caplog: pytest.LogCaptureFixture) -> None:
    def handle(sock: Any, address: Any) -> None:
        while True:
            line = read_line(sock)
            if not line:
                return
            if line == b"boom\n":
                raise ValueError("the handler broke on purpose")
            sock.sendall(b"ok " + line)

    with (
        caplog.at_level(logging.ERROR, logger="corun.server"),
        serving(StreamServer(LOCAL, handle)) as server,
    ):
        healthy = connect(server.address)
        assert ask(healthy, b"one") == b"ok one\n"
        failing = connect(server.address)
        failing_port = failing.getsockname()[1]
        assert ask(failing, b"before") == b"ok before\n"
        failing.sendall(b"boom\n")
        assert recv_all(failing) == b""  # the server closed this connection
        failing.close()
        # The other connection, and new ones, are served as before.
        assert ask(healthy, b"two") == b"ok two\n"
        assert exchange(server.address, b"three\n") == b"ok three\n"
        healthy.close()

    [record] = [r for r in caplog.records if r.name == "corun.server"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert f"127.0.0.1:{failing_port}" in record.getMessage()
    assert "the handler broke on purpose" in caplog.text  # the traceback was logged


# -- stopping -----------------------------------------------------------------


def test_stop_lets_handlers_finish_within_the_timeout_then_kills_the_rest() -> None:
    started = []
    outcome: dict[str, str] = {}
    both_running = corun.Event()

    def handle(sock: Any, address: Any) -> None:
        kind = read_line(sock).strip().decode()
        started.append(kind)
        if len(started) == 2:
            both_running.set()
        try:
            corun.sleep(0.3 if kind == "quick" else 30)
            sock.sendall(b"done\n")
            outcome[kind] = "finished"
        except GreenletExit:
            outcome[kind] = "killed"
            raise

    server = StreamServer(LOCAL, handle)
    server.start()
    address = server.address
    quick, stuck = connect(address), connect(address)
    quick.sendall(b"quick\n")
    stuck.sendall(b"stuck\n")
    assert both_running.wait(5)

    began = now()
    server.stop(timeout=0.8)
    took = now() - began

    assert outcome == {"quick": "finished", "stuck": "killed"}
    assert 0.7 <= took < 3  # it waited for the timeout (not for 30 s), then killed
    assert read_line(quick) == b"done\n"
    assert recv_all(stuck) == b""  # the killed handler's connection was closed
    assert server.closed and not server.started
    with pytest.raises(ConnectionRefusedError):
        create_connection(address, timeout=5)
    quick.close()
    stuck.close()


def test_stop_returns_as_soon_as_the_handlers_are_done() -> None:
    def handle(sock: Any, address: Any) -> None:
        read_line(sock)
        corun.sleep(0.1)
        sock.sendall(b"bye\n")

    server = StreamServer(LOCAL, handle)
    server.start()
    clients = [connect(server.address) for _ in range(5)]
    for c in clients:
        c.sendall(b"hi\n")
    corun.sleep(0.02)
    began = now()
    server.stop(timeout=10)
    assert now() - began < 2
    assert [read_line(c) for c in clients] == [b"bye\n"] * 5
    for c in clients:
        c.close()


def test_stop_closes_the_connections_of_handlers_that_never_ran() -> None:
    stopped = corun.Event()
    served = []

    def handle(sock: Any, address: Any) -> None:
        served.append(address)
        # The other two connections were accepted in the same batch; their
        # handlers are queued behind this one and are killed before they run.
        server.stop(timeout=0)
        stopped.set()

    server = StreamServer(LOCAL, handle)
    server.start()
    corun.sleep(0.02)  # the accept loop waits for connections
    # Blocking stdlib clients: all three wait in the backlog before the loop wakes.
    clients = [stdsocket.create_connection(server.address, timeout=5) for _ in range(3)]
    assert stopped.wait(5)
    assert len(served) == 1
    for c in clients:
        assert c.recv(10) == b""  # closed by the server, not left for the garbage collector
        c.close()


def test_serve_forever_ends_when_a_handler_stops_the_server() -> None:
    def handle(sock: Any, address: Any) -> None:
        if read_line(sock) == b"quit\n":
            sock.sendall(b"stopping\n")
            server.stop(timeout=10)  # does not wait for this very handler

    server = StreamServer(LOCAL, handle)
    server.start()

    def client() -> bytes:
        return exchange(server.address, b"quit\n")

    task = corun.spawn(client)
    began = now()
    server.serve_forever()
    assert now() - began < 3
    assert task.get(timeout=5) == b"stopping\n"
    assert server.closed


def test_close_stops_accepting_but_lets_handlers_run() -> None:
    release = corun.Event()

    def handle(sock: Any, address: Any) -> None:
        release.wait(5)
        sock.sendall(b"still here\n")

    server = StreamServer(LOCAL, handle)
    server.start()
    address = server.address
    client = connect(address)
    corun.sleep(0.05)
    server.close()
    with pytest.raises(ConnectionRefusedError):
        create_connection(address, timeout=5)
    release.set()
    assert read_line(client) == b"still here\n"
    client.close()


def test_context_manager_stops_and_a_closed_server_cannot_restart() -> None:
    with StreamServer(LOCAL, echo) as server:
        assert not server.started and not server.closed
        assert server.server_port == 0
        server.start()
        assert server.started
        assert server.server_host == "127.0.0.1"
        assert server.server_port != 0
        assert exchange(server.address, b"x") == b"x"
    assert server.closed
    with pytest.raises(RuntimeError, match="closed"):
        server.start()


# -- limits -----------------------------------------------------------------


@pytest.mark.parametrize("limit", ["int", "pool"])
def test_a_pool_limits_how_many_handlers_run_at_once(limit: str) -> None:
    pool = Pool(3)
    running = [0]
    peak = [0]

    def handle(sock: Any, address: Any) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            corun.sleep(0.05)
            sock.sendall(recv_all(sock))
        finally:
            running[0] -= 1

    with serving(StreamServer(LOCAL, handle, spawn=3 if limit == "int" else pool)) as server:
        tasks = [corun.spawn(exchange, server.address, b"%d" % n) for n in range(12)]
        corun.joinall(tasks, timeout=10, raise_error=True)
    assert [t.value for t in tasks] == [b"%d" % n for n in range(12)]
    assert peak[0] == 3


def test_the_default_spawn_has_no_limit() -> None:
    running = [0]
    everyone = corun.Event()

    def handle(sock: Any, address: Any) -> None:
        running[0] += 1
        if running[0] == 30:
            everyone.set()
        # Each handler waits until all 30 run at the same time.
        sock.sendall(b"together\n" if everyone.wait(5) else b"alone\n")

    with serving(StreamServer(LOCAL, handle)) as server:
        tasks = [corun.spawn(exchange, server.address, b"") for _ in range(30)]
        corun.joinall(tasks, timeout=10, raise_error=True)
    assert {t.value for t in tasks} == {b"together\n"}


EMFILE_PROGRAM = r"""
import errno, json, logging, os, resource, socket, time
import corun
from corun.server import StreamServer

records = []
class Collect(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
log = logging.getLogger("corun.server")
log.addHandler(Collect())
log.propagate = False

def handle(sock, address):
    sock.sendall(b"echo " + sock.recv(100))

resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
server = StreamServer(("127.0.0.1", 0), handle)
server.start()
corun.sleep(0.05)  # the accept loop now waits for connections

# Blocking stdlib clients: the kernel completes their connections in the
# backlog without the server's help, and they never let the hub run.
clients = [socket.create_connection(server.address) for _ in range(3)]
for n, c in enumerate(clients):
    c.sendall(b"%d" % n)
filler = []
while True:
    try:
        filler.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        assert exc.errno == errno.EMFILE
        break

cpu = time.process_time()
corun.sleep(1.0)  # the server meets EMFILE for the whole second
cpu = time.process_time() - cpu
alive = server.started and not server._loop.dead

for fd in filler:
    os.close(fd)
freed = time.monotonic()
replies = []
hub = corun.get_hub()
for c in clients:
    hub.wait_readable(c.fileno(), 5)
    replies.append(c.recv(100).decode())
    c.close()
recovered = time.monotonic() - freed

after = socket.socket()
after.setblocking(False)
after.connect_ex(server.address)
hub.wait_writable(after.fileno(), 5)
after.send(b"later")
hub.wait_readable(after.fileno(), 5)
late = after.recv(100).decode()
after.close()
server.stop()
print(json.dumps(dict(cpu=cpu, alive=alive, replies=replies, recovered=recovered, late=late,
                      records=records, filled=len(filler))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_NOFILE and EMFILE as on Linux")
def test_out_of_fds_backs_off_instead_of_spinning_and_recovers() -> None:
    proc = run_python(EMFILE_PROGRAM, timeout=30)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["filled"] > 0
    assert result["alive"]
    # A spinning loop would burn about the whole second.
    assert result["cpu"] < 0.3, result
    # Logged once for the whole episode, then once more when it recovered.
    assert len(result["records"]) == 2, result["records"]
    assert "Too many open files" in result["records"][0]
    assert "again" in result["records"][1]
    assert result["replies"] == ["echo 0", "echo 1", "echo 2"]
    assert result["recovered"] < 3  # within one (capped) pause of the fds coming back
    assert result["late"] == "echo later"


# -- listeners ---------------------------------------------------------------


def test_listener_given_as_a_stdlib_socket_is_taken_over() -> None:
    original = stdsocket.socket()
    original.bind(("127.0.0.1", 0))
    original.listen()
    address = original.getsockname()
    server = StreamServer(original, echo)
    # Its fd moved to the server's cooperative socket: one owner closes it.
    assert original.fileno() == -1
    assert isinstance(server.socket, cosocket)
    assert server.address == address
    with serving(server):
        assert exchange(address, b"adopted") == b"adopted"
    with pytest.raises(ConnectionRefusedError):
        create_connection(address, timeout=5)
    original.close()  # harmless


def test_listener_given_as_a_cooperative_socket_that_is_not_listening_yet() -> None:
    sock = cosocket()
    sock.bind(("127.0.0.1", 0))
    server = StreamServer(sock, echo, backlog=5)
    assert server.socket is sock
    with serving(server):
        assert exchange(server.address, b"bound only") == b"bound only"
    assert sock.fileno() == -1


def test_listener_given_as_a_unix_path(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    server = StreamServer(path, echo)
    with serving(server):
        assert server.address == path
        assert server.server_port is None and server.server_host is None
        tasks = [corun.spawn(exchange, path, b"unix %d" % n) for n in range(20)]
        corun.joinall(tasks, timeout=5, raise_error=True)
        assert [t.value for t in tasks] == [b"unix %d" % n for n in range(20)]
    assert not os.path.exists(path)  # the socket file it made is gone


def test_a_busy_address_fails_at_start() -> None:
    with serving(StreamServer(LOCAL, echo)) as first:
        second = StreamServer(first.address, echo)
        with pytest.raises(OSError) as info:
            second.start()
        assert info.value.errno == errno.EADDRINUSE
        assert not second.started


# -- TLS -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


# The clients are real threads, which answer in real time.
@pytest.mark.corun(clock="real")
def test_tls_clients_are_served_and_a_bad_handshake_only_drops_its_connection(
    ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    def handle(sock: Any, address: Any) -> None:
        assert isinstance(sock, ssl.SSLSocket)
        sock.sendall(b"secure " + sock.recv(100))

    def tls_client(port: int, message: bytes) -> bytes:
        # The stdlib's blocking ssl in an OS thread: an ordinary TLS client.
        with (
            stdsocket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(message)
            return tls.recv(100)

    def garbage_client(port: int) -> bytes:
        with stdsocket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                return recv_all(raw)
            except ConnectionResetError:
                return b"reset"

    pool = corun.get_hub().threadpool
    with (
        caplog.at_level(logging.WARNING, logger="corun.server"),
        serving(StreamServer(LOCAL, handle, ssl_context=server_context)) as server,
    ):
        port = server.server_port
        # A client that connects and never starts its handshake holds only its own task.
        silent = stdsocket.create_connection(("127.0.0.1", port))
        garbage = pool.spawn(garbage_client, port)
        good = [pool.spawn(tls_client, port, b"%d" % n) for n in range(5)]
        assert [g.get(timeout=10) for g in good] == [b"secure %d" % n for n in range(5)]
        garbage.get(timeout=10)  # the server ended that connection
        corun.sleep(0.05)
        # Only the garbage failed; the silent client is still in its handshake.
        [failure] = [r for r in caplog.records if "handshake" in r.getMessage()]
        assert failure.levelno == logging.WARNING
        assert "HTTP_REQUEST" in failure.getMessage() or "wrong version" in failure.getMessage()
        silent.close()


# The good client is a real thread, which answers in real time.
@pytest.mark.corun(clock="real")
def test_a_silent_tls_client_is_dropped_after_the_handshake_timeout(
    ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    def handle(sock: Any, address: Any) -> None:
        sock.sendall(b"secure " + sock.recv(100))

    def tls_client(port: int) -> bytes:
        with (
            stdsocket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"hello")
            return tls.recv(100)

    # One handler at a time: the silent client holds the only place until
    # its handshake times out; then the real client is served.
    server = StreamServer(LOCAL, handle, spawn=1, ssl_context=server_context)
    server.handshake_timeout = 0.5
    with caplog.at_level(logging.WARNING, logger="corun.server"), serving(server):
        silent = stdsocket.create_connection(("127.0.0.1", server.server_port))
        corun.sleep(0.1)  # taken first
        started = now()
        good = corun.get_hub().threadpool.spawn(tls_client, server.server_port)
        assert good.get(timeout=10) == b"secure hello"
        waited = now() - started
        silent.settimeout(5)
        assert silent.recv(10) == b""  # dropped by the server
        silent.close()
    assert 0.2 < waited < 5
    [timed_out] = [r for r in caplog.records if "handshake" in r.getMessage()]
    assert "timed out" in timed_out.getMessage()


# -- datagrams -------------------------------------------------------------------


def test_datagram_server_answers_each_datagram(caplog: pytest.LogCaptureFixture) -> None:
    def handle(data: bytes, address: Any) -> None:
        if data == b"boom":
            raise RuntimeError("bad datagram")
        server.sendto(data.upper(), address)

    server = DatagramServer(LOCAL, handle)

    def client(n: int) -> bytes:
        with cosocket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(b"boom", server.address)
            sock.sendto(b"datagram %d" % n, server.address)
            data, source = sock.recvfrom(100)
            assert source == server.address
            return data

    with caplog.at_level(logging.ERROR, logger="corun.server"), serving(server):
        tasks = [corun.spawn(client, n) for n in range(20)]
        corun.joinall(tasks, timeout=10, raise_error=True)
    assert [t.value for t in tasks] == [b"DATAGRAM %d" % n for n in range(20)]
    errors = [r for r in caplog.records if r.name == "corun.server"]
    assert len(errors) == 20
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in errors)
    assert server.closed


def test_datagram_handlers_can_answer_while_the_server_stops() -> None:
    def handle(data: bytes, address: Any) -> None:
        corun.sleep(0.2)
        server.sendto(b"late " + data, address)

    server = DatagramServer(LOCAL, handle)
    server.start()
    sock = cosocket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.sendto(b"hello", server.address)
    corun.sleep(0.05)
    server.stop(timeout=5)
    assert sock.recvfrom(100)[0] == b"late hello"
    sock.close()
    with pytest.raises(RuntimeError, match="no socket"):
        DatagramServer(LOCAL, handle).sendto(b"x", ("127.0.0.1", 9))


# -- resources --------------------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_no_fd_leak_after_500_connections() -> None:
    def handle(sock: Any, address: Any) -> None:
        sock.sendall(b"hi")  # and does not close it: the server does

    before = open_fds()
    with serving(StreamServer(LOCAL, handle)) as server:
        for _ in range(10):
            tasks = [corun.spawn(exchange, server.address, b"") for _ in range(50)]
            corun.joinall(tasks, timeout=10, raise_error=True)
            assert {t.value for t in tasks} == {b"hi"}
    assert open_fds() == before


# -- misuse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: StreamServer(LOCAL, echo, spawn="nonsense"), TypeError, "spawn must be"),
        (lambda: StreamServer(LOCAL, echo, spawn=0), ValueError, "at least 1"),
        (lambda: StreamServer(LOCAL, echo, spawn=True), TypeError, "spawn must be"),
        (lambda: StreamServer(LOCAL, echo, spawn=None), TypeError, "spawn must be"),
        (lambda: StreamServer(8080, echo), TypeError, "listener must be"),
        (lambda: StreamServer(("127.0.0.1", "80"), echo), ValueError, "port"),
        (lambda: StreamServer((80, "127.0.0.1"), echo), TypeError, "host"),
        (lambda: StreamServer(("127.0.0.1",), echo), ValueError, r"\(host, port\)"),
        (lambda: StreamServer(LOCAL, "echo"), TypeError, "handle must be callable"),
        (lambda: StreamServer(LOCAL), TypeError, "needs a handle"),
        (lambda: StreamServer(LOCAL, echo, ssl_context="cert.pem"), TypeError, "ssl.SSLContext"),
        (lambda: StreamServer(LOCAL, echo, backlog=-1), ValueError, "backlog"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    make: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_a_socket_of_the_wrong_kind_is_refused() -> None:
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError, match="needs a SOCK_STREAM socket"):
            StreamServer(udp, echo)
        assert udp.fileno() >= 0  # refused before anything was taken from it
    with stdsocket.socket() as tcp:
        with pytest.raises(ValueError, match="needs a SOCK_DGRAM socket"):
            DatagramServer(tcp, echo)
    closed = stdsocket.socket()
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        StreamServer(closed, echo)


def test_a_subclass_may_override_handle() -> None:
    class Upper(StreamServer):
        def handle(self, sock: Any, address: Any) -> None:
            sock.sendall(recv_all(sock).upper())

    with serving(Upper(LOCAL)) as server:
        assert exchange(server.address, b"shout") == b"SHOUT"


def test_under_patch_all_a_stdlib_listener_and_clients_just_work() -> None:
    proc = run_patched(
        """
        import socket, threading
        import corun
        from corun.server import StreamServer

        def handle(sock, address):
            sock.sendall(sock.recv(100).upper())

        listener = socket.socket()  # already the cooperative class
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = StreamServer(listener, handle)
        server.start()

        def client(n):
            with socket.create_connection(server.address) as c:
                c.sendall(b"thread %d" % n)
                replies.append(c.recv(100))

        replies = []
        threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        server.stop()
        print(sorted(replies) == sorted(b"THREAD %d" % n for n in range(50)), listener.fileno())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "-1"]  # served; the server closed the listener it was given
    assert proc.stderr == ""
