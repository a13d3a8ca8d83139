"""The cooperative selectors: stdlib classes on cooperative pollers; the copies other modules keep."""

from __future__ import annotations

import errno
import selectors as stdselectors
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import corun.patches.select as coselect
import corun.patches.selectors as coselectors
import pytest

import corun

from ..conftest import run_python

LOCAL = "127.0.0.1"

CLASSES = [
    name
    for name in ("SelectSelector", "PollSelector", "EpollSelector", "DefaultSelector")
    if hasattr(coselectors, name)
]

# Installs the select, selectors and time twins by hand in a fresh interpreter,
# the way corun.monkey does: replace the attributes, then make the changes
# _after_patch returns.
PATCH_BY_HAND = """
import select, selectors, sys, time
import corun
import corun.patches.select, corun.patches.selectors, corun.patches.time
for target, twin in (
    (select, corun.patches.select),
    (selectors, corun.patches.selectors),
    (time, corun.patches.time),
):
    for name in twin.__implements__:
        setattr(target, name, getattr(twin, name))
    for name in getattr(twin, "__removes__", []):
        delattr(target, name)
    for module, attr, value in getattr(twin, "_after_patch", lambda module: [])(target) or []:
        setattr(sys.modules[module], attr, value)
"""


@pytest.fixture(params=CLASSES)
def selector(request: pytest.FixtureRequest) -> Iterator[stdselectors.BaseSelector]:
    """Each cooperative selector class in turn."""
    sel = getattr(coselectors, request.param)()
    yield sel
    sel.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def later(seconds: float, func: Callable[..., Any], *args: Any) -> corun.Greenlet:
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


# -- the classes ----------------------------------------------------------------


def test_contract() -> None:
    assert coselectors.__target__ == "selectors"
    for name in coselectors.__implements__:
        assert hasattr(stdselectors, name)
        ours = getattr(coselectors, name)
        assert issubclass(ours, stdselectors.BaseSelector)
        assert ours.__module__ == "corun.patches.selectors"
    for name in coselectors.__removes__:
        assert hasattr(stdselectors, name) and name not in coselectors.__implements__


def test_each_class_is_the_stdlib_class_on_a_cooperative_poller() -> None:
    assert issubclass(coselectors.SelectSelector, stdselectors.SelectSelector)
    if hasattr(coselectors, "PollSelector"):
        assert issubclass(coselectors.PollSelector, stdselectors.PollSelector)
        assert coselectors.PollSelector._selector_cls is coselect.poll
    if hasattr(coselectors, "EpollSelector"):
        assert issubclass(coselectors.EpollSelector, stdselectors.EpollSelector)
        assert coselectors.EpollSelector._selector_cls is coselect.epoll


def test_default_selector_matches_the_stdlib_choice() -> None:
    if stdselectors.DefaultSelector is getattr(stdselectors, "EpollSelector", None):
        assert coselectors.DefaultSelector is coselectors.EpollSelector
    assert issubclass(coselectors.DefaultSelector, stdselectors.BaseSelector)
    assert coselectors.DefaultSelector.__module__ == "corun.patches.selectors"


# -- select() on every class ------------------------------------------------------


def test_reports_the_ready_key(selector: stdselectors.BaseSelector, pair: Any) -> None:
    a, _ = pair
    c, d = socket.socketpair()
    try:
        selector.register(a, stdselectors.EVENT_READ, "a")
        selector.register(c, stdselectors.EVENT_READ, "c")
        later(0.1, d.send, b"x")
        [(key, events)] = selector.select(5)
        assert key.fileobj is c and key.data == "c"
        assert events == stdselectors.EVENT_READ
    finally:
        c.close()
        d.close()


def test_read_and_write_on_one_socket(selector: stdselectors.BaseSelector, pair: Any) -> None:
    a, b = pair
    selector.register(a, stdselectors.EVENT_READ | stdselectors.EVENT_WRITE)
    b.send(b"x")
    [(key, events)] = selector.select(1)
    assert key.fileobj is a
    assert events == stdselectors.EVENT_READ | stdselectors.EVENT_WRITE


def test_timeout_returns_nothing_after_about_the_timeout(
    selector: stdselectors.BaseSelector, pair: Any
) -> None:
    a, _ = pair
    selector.register(a, stdselectors.EVENT_READ)
    start = time.monotonic()
    assert selector.select(0.2) == []
    assert 0.18 <= time.monotonic() - start < 1.0
    start = time.monotonic()
    assert selector.select(0) == []
    assert selector.select(-1) == []
    assert time.monotonic() - start < 1  # at once, not waiting for an event


def test_another_task_keeps_running_while_one_is_blocked(
    selector: stdselectors.BaseSelector, pair: Any
) -> None:
    a, b = pair
    selector.register(a, stdselectors.EVENT_READ)
    ticker = Ticker()
    later(0.3, b.send, b"x")
    start = time.monotonic()
    [(key, _)] = selector.select()
    assert key.fileobj is a
    assert time.monotonic() - start >= 0.28
    assert ticker.stop() >= 10


def test_selectors_in_many_tasks_at_once() -> None:
    pairs = [socket.socketpair() for _ in range(10)]

    def wait(a: socket.socket) -> float:
        with coselectors.DefaultSelector() as sel:
            sel.register(a, stdselectors.EVENT_READ)
            start = time.monotonic()
            assert sel.select(5)[0][0].fileobj is a
            return time.monotonic() - start

    def send_all() -> None:
        corun.sleep(0.3)
        for _, b in pairs:
            b.send(b"x")

    try:
        start = time.monotonic()
        tasks = [corun.spawn(wait, a) for a, _ in pairs]
        later(0, send_all)
        corun.joinall(tasks, raise_error=True)
        assert time.monotonic() - start < 1.5  # ten blocking selects would take 3 s
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_closing_a_socket_being_selected_on(selector: stdselectors.BaseSelector, pair: Any) -> None:
    a, _ = pair
    key = selector.register(a, stdselectors.EVENT_READ)

    def close_it() -> None:
        corun.hub.notify_closing(key.fd)  # what the cooperative socket's close does first
        a.close()

    later(0.1, close_it)
    start = time.monotonic()
    if isinstance(selector, coselectors.SelectSelector):
        # Woken, then select() meets the closed fd, as the original would.
        with pytest.raises(OSError) as info:
            selector.select(5)
        assert info.value.errno == errno.EBADF
        assert time.monotonic() - start < 2
    elif isinstance(selector, getattr(coselectors, "EpollSelector", ())):
        # The kernel drops a closed fd from an epoll set without a word, as
        # without corun: the call simply times out.
        assert selector.select(0.4) == []
        assert time.monotonic() - start >= 0.38
    else:
        # poll() reports POLLNVAL, which the selector hands back as readable.
        assert selector.select(5) == [(key, stdselectors.EVENT_READ)]
        assert time.monotonic() - start < 2


def test_a_selectors_echo_loop_serves_twenty_clients_at_once(selector: stdselectors.BaseSelector) -> None:
    """An echo server on a selector; 20 clients each pause 0.3 s mid-conversation."""
    listener = socket.create_server((LOCAL, 0), backlog=32)
    listener.setblocking(False)
    address = listener.getsockname()
    selector.register(listener, stdselectors.EVENT_READ, None)
    stop = False

    def server() -> None:
        while not stop:
            for key, _ in selector.select(0.1):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    selector.register(conn, stdselectors.EVENT_READ, "conn")
                    continue
                conn = key.fileobj
                data = conn.recv(1024)
                if data:
                    conn.sendall(data.upper())
                else:
                    selector.unregister(conn)
                    conn.close()

    def client(i: int) -> bytes:
        with socket.create_connection(address) as c, coselectors.DefaultSelector() as mine:
            mine.register(c, stdselectors.EVENT_READ)
            corun.sleep(0.3)
            c.sendall(b"hello %d" % i)
            assert mine.select(5)
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
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
            if key.fileobj is not listener:
                key.fileobj.close()
        listener.close()
    assert [c.value for c in clients] == [b"HELLO %d" % i for i in range(20)]
    assert elapsed < 2.0  # one client after the other would take 6 s
    assert serving.successful()


# -- captures in other stdlib modules ----------------------------------------------


def test_after_patch_fixes_the_copies_other_modules_made() -> None:
    proc = run_python(
        """
import socketserver, subprocess, multiprocessing.connection
"""
        + PATCH_BY_HAND
        + """
import corun.patches.selectors as ours
for module, attr in (
    (socketserver, "_ServerSelector"),
    (subprocess, "_PopenSelector"),
    (multiprocessing.connection, "_WaitSelector"),
):
    value = getattr(module, attr)
    print(attr, value.__module__, value.__name__)
print("default", selectors.DefaultSelector.__module__)
"""
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == [
        "_ServerSelector corun.patches.selectors PollSelector",
        "_PopenSelector corun.patches.selectors PollSelector",
        "_WaitSelector corun.patches.selectors PollSelector",
    ]
    assert lines[3] == "default corun.patches.selectors"


def test_after_patch_leaves_a_users_own_choice_alone() -> None:
    proc = run_python(
        """
import socketserver

class Mine:
    pass

socketserver._ServerSelector = Mine
"""
        + PATCH_BY_HAND
        + """
print(socketserver._ServerSelector is Mine)
"""
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]


def test_socketserver_imported_before_patching_serves_in_a_task() -> None:
    """``serve_forever`` waits in its selector in one task while the main task makes requests."""
    proc = run_python(
        """
import socketserver

class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline().upper())
"""
        + PATCH_BY_HAND
        + """
import socket

server = socketserver.TCPServer(("127.0.0.1", 0), Upper)
# A long poll interval: a blocking selector would hold the whole thread for it.
serving = corun.spawn(server.serve_forever, 5.0)
start = time.monotonic()
time.sleep(0.3)
slept = time.monotonic() - start

def request(i):
    with socket.create_connection(server.server_address) as c:
        c.sendall(b"hello %d\\n" % i)
        # Wait cooperatively for the answer (the socket itself is not patched here).
        assert select.select([c], [], [], 5)[0] == [c]
        return c.recv(100)

answers = [request(i) for i in range(5)]
serving.kill()
server.server_close()
print(f"slept {slept:.3f}")
print(answers == [b"HELLO %d\\n" % i for i in range(5)])
"""
    )
    assert proc.returncode == 0, proc.stderr
    slept_line, answers_line = proc.stdout.splitlines()
    assert 0.28 <= float(slept_line.split()[1]) < 1.5
    assert answers_line == "True"


def test_asyncio_loops_in_many_tasks_block_only_their_own() -> None:
    proc = run_python(
        PATCH_BY_HAND
        + """
import asyncio

async def nap():
    await asyncio.sleep(0.3)
    return "done"

start = time.monotonic()
tasks = [corun.spawn(asyncio.run, nap()) for _ in range(10)]
corun.joinall(tasks, raise_error=True)
print([t.value for t in tasks] == ["done"] * 10, f"{time.monotonic() - start:.3f}")
"""
    )
    assert proc.returncode == 0, proc.stderr
    ok, elapsed = proc.stdout.split()
    assert ok == "True"
    assert 0.28 <= float(elapsed) < 1.5  # one loop after the other would take 3 s
