"""The cooperative ``select``, ``poll`` and ``epoll``: stdlib results and errors, other tasks kept running."""

from __future__ import annotations

import errno
import os
import select as stdselect
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import corun.patches.select as coselect
import pytest

import corun
from corun.hub import notify_closing

from ..conftest import expects_loop_exit, run_patched, run_python

LOCAL = "127.0.0.1"

needs_epoll = pytest.mark.skipif(not hasattr(stdselect, "epoll"), reason="epoll is Linux only")
needs_poll = pytest.mark.skipif(not hasattr(stdselect, "poll"), reason="no poll on this platform")

# Installs the select twin by hand in a fresh interpreter.
PATCH_SELECT = """
import select
import corun
import corun.patches.select as coselect
for name in coselect.__implements__:
    setattr(select, name, getattr(coselect, name))
import sys
for _module, _attr, _value in coselect._after_patch(select):
    setattr(sys.modules[_module], _attr, _value)
"""


# -- helpers ------------------------------------------------------------------


class Sockets:
    """Sockets made for one test, closed after it."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def pair(self) -> tuple[socket.socket, socket.socket]:
        """A connected Unix socket pair."""
        a, b = socket.socketpair()
        self.socks += [a, b]
        return a, b

    def tcp_pair(self) -> tuple[socket.socket, socket.socket]:
        """A connected TCP pair on 127.0.0.1 (for out-of-band data)."""
        with socket.create_server((LOCAL, 0)) as listener:
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
        self.socks += [client, server]
        return client, server

    def close_all(self) -> None:
        for s in self.socks:
            s.close()


@pytest.fixture
def socks() -> Iterator[Sockets]:
    made = Sockets()
    yield made
    made.close_all()


def later(seconds: float, func: Callable[..., Any], *args: Any) -> corun.Greenlet:
    """Run ``func(*args)`` in a new task after ``seconds``."""

    def run() -> None:
        corun.sleep(seconds)
        func(*args)

    return corun.spawn(run)


class Ticker:
    """A task that counts while others wait: proof the thread was not blocked."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = corun.spawn(self._run)

    def _run(self) -> None:
        while True:
            self.ticks += 1
            corun.sleep(0.01)

    def stop(self) -> int:
        self.task.kill()
        return self.ticks


def timed(func: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = func(*args)
    return result, time.monotonic() - start


def cooperative_close(sock: socket.socket) -> None:
    """Close ``sock`` as the cooperative socket does: waiters are told first."""
    notify_closing(sock.fileno())
    sock.close()


# -- the contract -------------------------------------------------------------


def test_contract() -> None:
    assert coselect.__target__ == "select"
    assert "select" in coselect.__implements__
    for name in coselect.__implements__:
        assert hasattr(coselect, name) and hasattr(stdselect, name)
    for name in coselect.__removes__:
        assert hasattr(stdselect, name) and name not in coselect.__implements__
    if hasattr(stdselect, "epoll"):
        assert {"poll", "epoll"} <= set(coselect.__implements__)
        assert coselect.__removes__ == []  # Linux: no kqueue, no devpoll


# -- select.select --------------------------------------------------------------


def test_reports_only_the_ready_socket(socks: Sockets) -> None:
    pairs = [socks.pair() for _ in range(4)]
    pairs[2][1].send(b"x")
    readers = [a for a, _ in pairs]
    r, w, x = coselect.select(readers, [], [], 1)
    assert r == [pairs[2][0]]
    assert w == [] and x == []


def test_returns_the_objects_given_fds_and_objects_mixed(socks: Sockets) -> None:
    a, b = socks.pair()
    c, d = socks.pair()
    b.send(b"x")
    d.send(b"x")
    r, w, _ = coselect.select([a, c.fileno()], [b], [], 1)
    assert r == [a, c.fileno()]
    assert w == [b]


def test_waits_for_the_socket_that_becomes_ready(socks: Sockets) -> None:
    pairs = [socks.pair() for _ in range(3)]
    later(0.1, pairs[1][1].send, b"x")
    (r, w, x), elapsed = timed(coselect.select, [a for a, _ in pairs], [], [], 5)
    assert r == [pairs[1][0]]
    assert w == [] and x == []
    assert 0.05 < elapsed < 2


def test_accepts_any_iterable(socks: Sockets) -> None:
    a, b = socks.pair()
    b.send(b"x")
    later(0.05, b.send, b"y")
    r, _, _ = coselect.select((s for s in [a]), iter([]), (), 1)
    assert r == [a]


def test_timeout_returns_empty_lists_after_about_the_timeout(socks: Sockets) -> None:
    a, _ = socks.pair()
    result, elapsed = timed(coselect.select, [a], [], [a], 0.2)
    assert result == ([], [], [])
    assert 0.18 <= elapsed < 1.0


def test_zero_timeout_does_not_wait(socks: Sockets) -> None:
    a, _ = socks.pair()
    result, elapsed = timed(coselect.select, [a], [], [], 0)
    assert result == ([], [], [])
    assert elapsed < 1  # at once, not waiting for an event


def test_no_fds_and_a_timeout_sleeps_cooperatively() -> None:
    ticker = Ticker()
    result, elapsed = timed(coselect.select, [], [], [], 0.3)
    assert result == ([], [], [])
    assert 0.28 <= elapsed < 1.0
    assert ticker.stop() >= 10


def test_another_task_keeps_running_while_one_is_blocked(socks: Sockets) -> None:
    a, b = socks.pair()
    ticker = Ticker()
    later(0.3, b.send, b"x")
    (r, _, _), elapsed = timed(coselect.select, [a], [], [])
    assert r == [a]
    assert elapsed >= 0.28
    assert ticker.stop() >= 10  # the thread went on ticking for 0.3 s


def test_writable_once_the_peer_reads(socks: Sockets) -> None:
    a, b = socks.pair()
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    assert coselect.select([], [a], [], 0) == ([], [], [])

    def drain() -> None:
        b.setblocking(False)
        try:
            while True:
                b.recv(65536)
        except BlockingIOError:
            pass

    later(0.1, drain)
    (_, w, _), elapsed = timed(coselect.select, [], [a], [], 5)
    assert w == [a]
    assert elapsed < 2


def test_out_of_band_data_is_exceptional(socks: Sockets) -> None:
    client, server = socks.tcp_pair()
    later(0.1, client.send, b"!", socket.MSG_OOB)
    (r, w, x), _ = timed(coselect.select, [], [], [server], 5)
    assert (r, w, x) == ([], [], [server])


def test_waiting_on_the_exceptional_set_does_not_spin(socks: Sockets) -> None:
    a, b = socks.pair()
    b.close()
    # Hung up: epoll keeps reporting that, select never calls it exceptional.
    ticker = Ticker()
    cpu = time.process_time()
    result, elapsed = timed(coselect.select, [], [], [a], 0.4)
    cpu = time.process_time() - cpu
    assert result == ([], [], [])
    assert elapsed >= 0.38
    assert ticker.stop() >= 10
    assert cpu < 0.2  # a busy loop would use the whole 0.4 s


def test_two_tasks_select_on_the_same_socket(socks: Sockets) -> None:
    a, b = socks.pair()
    results: list[Any] = []
    tasks = [corun.spawn(lambda: results.append(coselect.select([a], [], [], 5))) for _ in range(3)]
    later(0.1, b.send, b"x")
    corun.joinall(tasks, raise_error=True)
    assert results == [([a], [], [])] * 3


def test_without_epoll_what_the_hub_cannot_watch_is_looked_at_again(
    socks: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coselect, "_original_epoll", None)  # as on a platform without epoll
    a, b = socks.pair()
    results: list[Any] = []
    tasks = [corun.spawn(lambda: results.append(coselect.select([a], [], [], 5))) for _ in range(2)]
    later(0.1, b.send, b"x")
    start = time.monotonic()
    corun.joinall(tasks, raise_error=True)
    assert results == [([a], [], [])] * 2
    assert time.monotonic() - start < 2


def test_select_while_another_task_waits_to_read_the_same_fd(socks: Sockets) -> None:
    a, b = socks.pair()
    reader = corun.spawn(corun.get_hub().wait_readable, a.fileno(), 5)
    corun.sleep(0)  # the reader is now parked on the fd
    later(0.1, b.send, b"x")
    (r, _, _), elapsed = timed(coselect.select, [a], [], [], 5)
    assert r == [a]
    reader.join(5)
    assert reader.successful()
    assert elapsed < 2


def test_closing_a_socket_being_selected_on_wakes_the_task(socks: Sockets) -> None:
    a, _ = socks.pair()
    later(0.1, cooperative_close, a)
    with pytest.raises(ValueError):  # as select.select([closed socket]) raises
        timed(coselect.select, [a], [], [], 5)


def test_closing_an_fd_being_selected_on_raises_ebadf() -> None:
    r_fd, w_fd = os.pipe()
    try:

        def close_it() -> None:
            notify_closing(r_fd)
            os.close(r_fd)

        later(0.1, close_it)
        start = time.monotonic()
        with pytest.raises(OSError) as info:
            coselect.select([r_fd], [], [], 5)
        assert info.value.errno == errno.EBADF
        assert time.monotonic() - start < 2
    finally:
        os.close(w_fd)
        try:
            os.close(r_fd)
        except OSError:
            pass


def test_a_pipe_and_a_socket_in_one_call(socks: Sockets) -> None:
    a, _ = socks.pair()
    r_fd, w_fd = os.pipe()
    try:
        later(0.1, os.write, w_fd, b"x")
        r, _, _ = coselect.select([a, r_fd], [], [], 5)
        assert r == [r_fd]
    finally:
        os.close(r_fd)
        os.close(w_fd)


@expects_loop_exit
def test_waiting_forever_on_nothing_is_reported() -> None:
    with pytest.raises(corun.LoopExit):
        coselect.select([], [], [])


def test_a_timeout_interrupts_select(socks: Sockets) -> None:
    a, _ = socks.pair()
    with corun.Timeout(0.1, False):
        coselect.select([a], [], [])
        pytest.fail("select returned")
    # The registration was removed: the fd can be waited on again.
    with pytest.raises(TimeoutError):
        corun.get_hub().wait_readable(a.fileno(), 0.05)


class NoFileno:
    pass


class BadFileno:
    def fileno(self) -> str:
        return "seven"


def closed_socket() -> socket.socket:
    s = socket.socket()
    s.close()
    return s


@pytest.mark.parametrize(
    "args",
    [
        (1, [], []),
        ([-1], [], []),
        ([NoFileno()], [], []),
        ([BadFileno()], [], []),
        ([closed_socket()], [], []),
        ([], [], [], "1"),
        ([], [], [], -1),
        ([], [], [], float("nan")),
        ([], [], [], 1e300),
    ],
)
def test_bad_arguments_fail_as_the_original_does(args: tuple[Any, ...]) -> None:
    if len(args) == 3:
        args = (*args, 0)
    with pytest.raises(Exception) as original:
        stdselect.select(*args)
    with pytest.raises(Exception) as ours:
        coselect.select(*args)
    assert type(ours.value) is type(original.value)
    if not isinstance(original.value, OverflowError):  # its wording differs between versions
        assert str(ours.value) == str(original.value)


def test_an_fd_that_is_not_open_is_ebadf() -> None:
    r_fd, w_fd = os.pipe()
    os.close(r_fd)
    os.close(w_fd)
    with pytest.raises(OSError) as info:
        coselect.select([r_fd], [], [], 1)
    assert info.value.errno == errno.EBADF


def test_a_select_loop_serves_twenty_clients_at_once() -> None:
    """An echo server written with select alone; 20 clients each pause 0.3 s mid-conversation."""
    listener = socket.create_server((LOCAL, 0), backlog=32)
    listener.setblocking(False)
    address = listener.getsockname()
    stop = False

    def server() -> None:
        conns: list[socket.socket] = []
        try:
            while not stop:
                readable, _, _ = coselect.select([listener, *conns], [], [], 0.1)
                for s in readable:
                    if s is listener:
                        conn, _ = listener.accept()
                        conns.append(conn)
                        continue
                    data = s.recv(1024)
                    if data:
                        s.sendall(data.upper())
                    else:
                        conns.remove(s)
                        s.close()
        finally:
            for s in conns:
                s.close()

    def client(i: int) -> bytes:
        with socket.create_connection(address) as c:
            corun.sleep(0.3)
            c.sendall(b"hello %d" % i)
            assert coselect.select([c], [], [], 5)[0] == [c]
            return c.recv(1024)

    serving = corun.spawn(server)
    try:
        start = time.monotonic()
        clients = [corun.spawn(client, i) for i in range(20)]
        corun.joinall(clients, raise_error=True)
        elapsed = time.monotonic() - start
    finally:
        stop = True
        serving.join(5)
        listener.close()
    assert [c.value for c in clients] == [b"HELLO %d" % i for i in range(20)]
    assert elapsed < 2.0  # one client after the other would take 6 s
    assert serving.successful()


def test_after_patch_fixes_pty_select() -> None:
    proc = run_python(
        "import pty\n"
        + PATCH_SELECT
        + """
import select
assert select.select is coselect.select
assert pty.select is coselect.select, pty.select
print("ok")
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


def test_patched_select_in_a_fresh_interpreter() -> None:
    proc = run_python(
        PATCH_SELECT
        + """
import socket, time
pairs = [socket.socketpair() for _ in range(5)]

def wait(a):
    return select.select([a], [], [], 5)[0] == [a]

def send_all():
    corun.sleep(0.3)
    for _, b in pairs:
        b.send(b"x")

start = time.monotonic()
tasks = [corun.spawn(wait, a) for a, _ in pairs] + [corun.spawn(send_all)]
corun.joinall(tasks, raise_error=True)
print(all(t.value for t in tasks[:5]), f"{time.monotonic() - start:.3f}")
"""
    )
    assert proc.returncode == 0, proc.stderr
    ok, elapsed = proc.stdout.split()
    assert ok == "True"
    assert 0.28 <= float(elapsed) < 1.5


# -- select.poll ------------------------------------------------------------------


@needs_poll
def test_poll_reports_the_ready_fd_with_its_events(socks: Sockets) -> None:
    a, b = socks.pair()
    c, _ = socks.pair()
    p = coselect.poll()
    p.register(a, stdselect.POLLIN)
    p.register(c.fileno(), stdselect.POLLIN)
    b.send(b"x")
    assert p.poll(1000) == [(a.fileno(), stdselect.POLLIN)]


@needs_poll
def test_poll_timeout_is_in_milliseconds(socks: Sockets) -> None:
    a, _ = socks.pair()
    p = coselect.poll()
    p.register(a, stdselect.POLLIN)
    result, elapsed = timed(p.poll, 200)
    assert result == []
    assert 0.18 <= elapsed < 1.0
    result, elapsed = timed(p.poll, 0)
    assert result == [] and elapsed < 1  # at once, not waiting for an event


@needs_poll
@pytest.mark.parametrize("forever", [None, -1, -1.5])
def test_poll_without_a_timeout_waits_for_an_event(socks: Sockets, forever: Any) -> None:
    a, b = socks.pair()
    p = coselect.poll()
    p.register(a, stdselect.POLLIN)
    ticker = Ticker()
    later(0.3, b.send, b"x")
    assert p.poll(forever) == [(a.fileno(), stdselect.POLLIN)]
    assert ticker.stop() >= 10


@needs_poll
def test_poll_modify_and_unregister(socks: Sockets) -> None:
    a, b = socks.pair()
    p = coselect.poll()
    p.register(a, stdselect.POLLIN)
    p.modify(a, stdselect.POLLOUT)
    assert p.poll(1000) == [(a.fileno(), stdselect.POLLOUT)]
    p.modify(a, stdselect.POLLIN)
    p.unregister(a)
    b.send(b"x")
    assert p.poll(100) == []


@needs_poll
def test_poll_errors_are_the_originals(socks: Sockets) -> None:
    a, _ = socks.pair()
    for p in (stdselect.poll(), coselect.poll()):
        with pytest.raises(KeyError):
            p.unregister(a)
        with pytest.raises(FileNotFoundError):
            p.modify(a, stdselect.POLLIN)
        with pytest.raises(ValueError):
            p.register(-1)
        with pytest.raises(TypeError):
            p.register("a")
        with pytest.raises(TypeError, match="timeout must be an integer or None"):
            p.poll("1")
        with pytest.raises(ValueError, match="NaN"):
            p.poll(float("nan"))


@needs_poll
def test_poll_reports_pollnval_for_a_closed_fd() -> None:
    r_fd, w_fd = os.pipe()
    p = coselect.poll()
    p.register(r_fd, stdselect.POLLIN)
    os.close(r_fd)
    try:
        assert p.poll(1000) == [(r_fd, stdselect.POLLNVAL)]
    finally:
        os.close(w_fd)


@needs_poll
def test_closing_an_fd_being_polled_reports_pollnval() -> None:
    r_fd, w_fd = os.pipe()
    p = coselect.poll()
    p.register(r_fd, stdselect.POLLIN)

    def close_it() -> None:
        notify_closing(r_fd)
        os.close(r_fd)

    later(0.1, close_it)
    try:
        result, elapsed = timed(p.poll, 5000)
        assert result == [(r_fd, stdselect.POLLNVAL)]
        assert elapsed < 2
    finally:
        os.close(w_fd)


@needs_poll
def test_poll_mask_zero_still_reports_a_hang_up(socks: Sockets) -> None:
    a, b = socks.pair()
    p = coselect.poll()
    p.register(a, 0)
    later(0.1, b.close)
    [(fd, events)] = p.poll(5000)
    assert fd == a.fileno()
    assert events & stdselect.POLLHUP


@needs_poll
def test_poll_priority_data(socks: Sockets) -> None:
    client, server = socks.tcp_pair()
    p = coselect.poll()
    p.register(server, stdselect.POLLPRI)
    later(0.1, client.send, b"!", socket.MSG_OOB)
    [(fd, events)] = p.poll(5000)
    assert fd == server.fileno()
    assert events & stdselect.POLLPRI


@needs_poll
def test_two_tasks_in_one_poll_object_is_an_error(socks: Sockets) -> None:
    a, _ = socks.pair()
    p = coselect.poll()
    p.register(a, stdselect.POLLIN)
    first = corun.spawn(p.poll, 300)
    corun.sleep(0)
    with pytest.raises(RuntimeError, match="concurrent poll"):
        p.poll(0)
    first.join(5)
    assert first.value == []
    assert p.poll(0) == []  # usable again once the first call returned


# -- select.epoll -------------------------------------------------------------------


@needs_epoll
def test_epoll_reports_the_ready_fd(socks: Sockets) -> None:
    a, b = socks.pair()
    c, _ = socks.pair()
    with coselect.epoll() as ep:
        ep.register(a.fileno(), stdselect.EPOLLIN)
        ep.register(c.fileno(), stdselect.EPOLLIN)
        later(0.1, b.send, b"x")
        ticker = Ticker()
        assert ep.poll(5) == [(a.fileno(), stdselect.EPOLLIN)]
        ticker.stop()


@needs_epoll
@pytest.mark.parametrize("forever", [-1, None, -0.5])
def test_epoll_without_a_timeout_waits_cooperatively(socks: Sockets, forever: Any) -> None:
    a, b = socks.pair()
    with coselect.epoll() as ep:
        ep.register(a.fileno(), stdselect.EPOLLIN)
        ticker = Ticker()
        later(0.3, b.send, b"x")
        assert ep.poll(forever) == [(a.fileno(), stdselect.EPOLLIN)]
        assert ticker.stop() >= 10


@needs_epoll
def test_epoll_timeout_is_in_seconds(socks: Sockets) -> None:
    a, _ = socks.pair()
    with coselect.epoll() as ep:
        ep.register(a.fileno(), stdselect.EPOLLIN)
        result, elapsed = timed(ep.poll, 0.2)
        assert result == []
        assert 0.18 <= elapsed < 1.0
        result, elapsed = timed(ep.poll, 0)
        assert result == [] and elapsed < 1  # at once, not waiting for an event


@needs_epoll
def test_epoll_maxevents(socks: Sockets) -> None:
    pairs = [socks.pair() for _ in range(3)]
    with coselect.epoll() as ep:
        for a, b in pairs:
            ep.register(a.fileno(), stdselect.EPOLLIN)
            b.send(b"x")
        assert len(ep.poll(1, 2)) == 2
        assert len(ep.poll(1)) == 3
        with pytest.raises(ValueError):
            ep.poll(1, 0)


@needs_epoll
def test_epoll_object_basics() -> None:
    ep = coselect.epoll()
    fd = ep.fileno()
    assert not ep.closed
    assert f"fd={fd}" in repr(ep)
    ep.close()
    ep.close()  # a second close does nothing
    assert ep.closed
    for call in (ep.fileno, lambda: ep.poll(0), lambda: ep.register(0), ep.__enter__):
        with pytest.raises(ValueError, match="closed epoll"):
            call()


@needs_epoll
def test_epoll_fromfd_and_errors(socks: Sockets) -> None:
    a, _ = socks.pair()
    original = stdselect.epoll()
    ep = coselect.epoll.fromfd(os.dup(original.fileno()))
    original.close()
    try:
        assert isinstance(ep, coselect.epoll)
        ep.register(a.fileno(), stdselect.EPOLLIN)
        with pytest.raises(FileExistsError):
            ep.register(a.fileno(), stdselect.EPOLLIN)
        ep.modify(a.fileno(), stdselect.EPOLLOUT)
        assert ep.poll(1) == [(a.fileno(), stdselect.EPOLLOUT)]
        ep.unregister(a.fileno())
        with pytest.raises(FileNotFoundError):
            ep.unregister(a.fileno())
        with pytest.raises(TypeError, match="timeout must be an integer or None"):
            ep.poll("1")
    finally:
        ep.close()


@needs_epoll
def test_closing_an_epoll_object_being_polled(socks: Sockets) -> None:
    a, _ = socks.pair()
    ep = coselect.epoll()
    ep.register(a.fileno(), stdselect.EPOLLIN)
    later(0.1, ep.close)
    start = time.monotonic()
    with pytest.raises(ValueError, match="closed epoll"):
        ep.poll(5)
    assert time.monotonic() - start < 2


@needs_epoll
def test_two_tasks_poll_one_epoll_object(socks: Sockets) -> None:
    a, b = socks.pair()
    with coselect.epoll() as ep:
        ep.register(a.fileno(), stdselect.EPOLLIN)
        tasks = [corun.spawn(ep.poll, 5) for _ in range(2)]
        later(0.1, b.send, b"x")
        corun.joinall(tasks, raise_error=True)
        assert [t.value for t in tasks] == [[(a.fileno(), stdselect.EPOLLIN)]] * 2


@needs_epoll
def test_patched_epoll_in_a_fresh_interpreter() -> None:
    proc = run_python(
        PATCH_SELECT
        + """
import socket, time
a, b = socket.socketpair()
ep = select.epoll()
assert isinstance(ep, coselect.epoll)
ep.register(a.fileno(), select.EPOLLIN)
ticks = []

def tick():
    for i in range(30):
        ticks.append(i)
        corun.sleep(0.01)

def send():
    corun.sleep(0.3)
    b.send(b"x")

corun.spawn(tick)
corun.spawn(send)
print(ep.poll(5), len(ticks) >= 10)
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "True"


def test_a_select_that_could_wait_still_lets_others_run_when_fds_are_ready() -> None:
    a, b = socket.socketpair()
    ticks = [0]

    def ticker() -> None:
        while True:
            ticks[0] += 1
            corun.sleep(0)

    task = corun.spawn(ticker)
    try:
        for _ in range(10):
            assert coselect.select([], [a], [], 1.0)[1] == [a]  # writable at once
        assert ticks[0] >= 5  # an always-ready loop does not starve the others
        before = ticks[0]
        for _ in range(10):
            coselect.select([], [a], [], 0)  # a pure poll is not a switch point
        assert ticks[0] == before
    finally:
        task.kill()
        a.close()
        b.close()


def test_a_select_in_another_task_leaves_a_running_asyncio_loop_alone() -> None:
    # The loop's task parks on an Event inside Thread.start(), not in select, so
    # its loop stays the OS thread's running loop; the thread it started then
    # waits in select and must not take that loop out.
    proc = run_patched(
        """
import asyncio, selectors, socket, threading

a, b = socket.socketpair()

def selecting():
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ)
        sel.select(5)

async def main():
    threading.Thread(target=selecting, daemon=True).start()
    running = [asyncio._get_running_loop() is not None]
    await asyncio.sleep(0.05)
    running.append(asyncio._get_running_loop() is not None)
    b.send(b"x")
    return running

results = []
loop_thread = threading.Thread(target=lambda: results.append(asyncio.run(main())))
loop_thread.start()
loop_thread.join()
print(results, asyncio._get_running_loop())
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "[[True, True]] None"
