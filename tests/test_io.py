"""I/O readiness waits, against both back ends (epoll and selectors)."""

from __future__ import annotations

import errno
import os
import selectors
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import corun
import corun.hub
from corun import _originals
from corun._io_epoll import EpollIO
from corun._io_selectors import SelectorsIO
from corun._waiter import Waiter
from corun.hub import READ, WRITE, Hub
from corun.testing import ManualClock, count_passes, fresh_hub

BACKENDS = ["epoll", "selectors"]


def use_backend(hub: Hub, name: str) -> Hub:
    """Give ``hub`` the named readiness back end (before it runs)."""
    if name == "epoll":
        if _originals.epoll is None:
            pytest.skip("epoll is Linux only")
        if not isinstance(hub.io, EpollIO):
            hub.io.close()
            hub.io = EpollIO(hub._waker.read_fd)
    else:
        hub.io.close()
        hub.io = SelectorsIO(hub._waker.read_fd)
    return hub


@pytest.fixture(params=BACKENDS)
def io_hub(request: pytest.FixtureRequest, hub: Hub) -> Hub:
    """The test's hub, with each back end in turn."""
    return use_backend(hub, request.param)


@pytest.fixture(params=BACKENDS)
def fake(request: pytest.FixtureRequest) -> Iterator[tuple[Hub, ManualClock]]:
    """A hub on a fake clock with each back end in turn, installed for one test."""
    clock = ManualClock()
    with fresh_hub(clock) as h:
        use_backend(h, request.param)
        yield h, clock


class Pairs:
    """Non-blocking socket pairs, unregistered and closed after the test."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def __call__(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.socks += [a, b]
        return a, b

    def close(self) -> None:
        for s in self.socks:
            if s.fileno() >= 0:
                corun.hub.notify_closing(s.fileno())
                s.close()


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    p = Pairs()
    yield p
    p.close()


def kernel_registered(io: Any, fd: int) -> bool:
    """Whether the OS (not just the back end's table) still watches ``fd``."""
    poller = io._epoll if isinstance(io, EpollIO) else getattr(io._sel, "_selector", None)
    if poller is not None and hasattr(poller, "fileno") and os.path.isdir("/proc/self/fdinfo"):
        # The kernel's own list of an epoll set's targets, one "tfd:" line each.
        with open(f"/proc/self/fdinfo/{poller.fileno()}") as f:
            return any(line.split()[1] == str(fd) for line in f if line.startswith("tfd:"))
    return fd in io._sel.get_map()


def fill(sock: socket.socket) -> None:
    """Write until the socket's buffer is full."""
    chunk = b"x" * 65536
    while True:
        try:
            sock.send(chunk)
        except BlockingIOError:
            return


def drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return n
        if not data:
            return n
        n += len(data)


# -- waking ---------------------------------------------------------------------


def test_wait_readable_wakes_when_data_arrives(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()

    def reader() -> bytes:
        io_hub.wait_readable(a.fileno())
        return a.recv(10)

    g = corun.spawn(reader)
    corun.sleep(0)
    assert io_hub.io.waiting == 1
    assert not g.dead
    b.send(b"hello")
    assert g.get(timeout=2) == b"hello"
    assert io_hub.io.waiting == 0


def test_wait_writable_wakes_when_the_buffer_drains(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fill(a)
    g = corun.spawn(io_hub.wait_writable, a.fileno())
    corun.sleep(0)
    assert not g.dead
    assert io_hub.io.waiting == 1
    assert drain(b) > 0
    g.get(timeout=2)
    assert io_hub.io.waiting == 0


def test_a_reader_and_a_writer_may_wait_on_one_fd_at_once(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fill(a)
    r = corun.spawn(io_hub.wait_readable, a.fileno())
    w = corun.spawn(io_hub.wait_writable, a.fileno())
    corun.sleep(0)
    assert io_hub.io.waiting == 2
    b.send(b"x")
    r.get(timeout=2)
    assert not w.dead
    assert io_hub.io.waiting == 1
    drain(b)
    w.get(timeout=2)
    assert io_hub.io.waiting == 0


def test_a_task_looping_on_sleep_0_cannot_starve_io(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    b.send(b"ready before anyone waits")
    spins = [0]
    woke_after: list[int] = []
    stop: list[bool] = []

    give_up = _originals.monotonic() + 3  # so that starved I/O fails the test, not hangs it

    def spinner() -> None:
        while not stop and _originals.monotonic() < give_up:
            spins[0] += 1
            corun.sleep(0)

    def reader() -> None:
        io_hub.wait_readable(a.fileno())
        woke_after.append(spins[0])

    s = corun.spawn(spinner)
    r = corun.spawn(reader)
    try:
        r.join(timeout=2)
    finally:
        stop.append(True)
        s.join(timeout=2)
    assert woke_after, "the reader was never woken while a task yielded in a loop"
    # The hub polls between passes, so the reader wakes within a pass or two.
    assert woke_after[0] <= 3, woke_after


def test_timer_and_fd_ready_at_once_resume_the_task_once(fake: tuple[Hub, ManualClock], pairs: Pairs) -> None:
    h, clock = fake
    a, b = pairs()
    log: list[Any] = []
    later: list[Waiter] = []

    def task() -> None:
        try:
            h.wait_readable(a.fileno(), timeout=1)
            log.append("readable")
        except TimeoutError:
            log.append("timed out")
        w2 = Waiter(h, "the next wait")
        later.append(w2)
        log.append(w2.get())

    g = corun.spawn(task)
    corun.sleep(0)
    b.send(b"x")
    clock.now += 10  # the timeout is due as well
    corun.idle()
    # The poll comes before the timers in a pass: the fd wins, and the
    # timer that lost must not resume the task's next wait.
    assert log == ["readable"]
    assert not g.dead
    assert all(t[2] is None for t in h._timers)
    h.wake(later[0], "second")
    g.join()
    assert log == ["readable", "second"]
    assert h.io.waiting == 0


# -- leaving a wait -------------------------------------------------------------


def test_timeout_raises_and_leaves_no_registration(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    start = _originals.monotonic()
    with pytest.raises(TimeoutError, match=f"fd {fd}"):
        io_hub.wait_readable(fd, timeout=0.05)
    assert _originals.monotonic() - start >= 0.04
    assert io_hub.io.waiting == 0
    assert io_hub.io.waiter_count(fd, READ) == 0
    assert all(t[2] is None for t in io_hub._timers)
    # The next wait on the same fd still works.
    b.send(b"x")
    io_hub.wait_readable(fd, timeout=2)
    assert io_hub.io.waiting == 0


def test_several_readers_of_one_fd_are_all_woken_and_each_retries(io_hub: Hub, pairs: Pairs) -> None:
    # As OS threads blocked in recv() on one socket: data wakes every reader;
    # the one that gets it returns, the others meet EAGAIN and wait again.
    a, b = pairs()
    fd = a.fileno()
    got: list[tuple[int, bytes]] = []

    def reader(i: int) -> None:
        while True:
            io_hub.wait_readable(fd, timeout=5)
            try:
                got.append((i, a.recv(1)))
                return
            except BlockingIOError:
                continue

    readers = [corun.spawn(reader, i) for i in range(3)]
    corun.sleep(0)
    assert io_hub.io.waiting == 3
    assert io_hub.io.waiter_count(fd, READ) == 3
    for n in range(3):
        b.send(b"abc"[n : n + 1])
        corun.sleep(0.05)
        assert len(got) == n + 1, got
        assert io_hub.io.waiting == 2 - n  # the others went back to waiting
    corun.joinall(readers, timeout=5, raise_error=True)
    assert sorted(data for _, data in got) == [b"a", b"b", b"c"]
    assert sorted(i for i, _ in got) == [0, 1, 2]
    assert io_hub.io.waiting == 0


def test_several_writers_of_one_fd_are_all_woken(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    fill(a)
    writers = [corun.spawn(io_hub.wait_writable, fd, 5) for _ in range(3)]
    corun.sleep(0)
    assert io_hub.io.waiter_count(fd, WRITE) == 3
    drain(b)
    corun.joinall(writers, timeout=5, raise_error=True)
    assert all(w.successful() for w in writers)
    assert io_hub.io.waiting == 0


def test_a_select_in_one_task_beside_a_recv_in_another(io_hub: Hub, pairs: Pairs) -> None:
    # The cooperative select registers with the hub like any other wait, so a
    # recv on the same fd in another task is no conflict; both are woken.
    from corun.patches.select import select as coselect

    a, b = pairs()

    def recv() -> bytes:
        io_hub.wait_readable(a.fileno(), 5)
        return a.recv(10)

    selecting = corun.spawn(coselect, [a], [], [], 5)
    receiving = corun.spawn(recv)
    corun.sleep(0)
    assert io_hub.io.waiter_count(a.fileno(), READ) == 2
    b.send(b"x")
    # Both are woken; the end of file then keeps the fd readable for the select.
    assert receiving.get(timeout=5) == b"x"
    b.close()
    readable, _, _ = selecting.get(timeout=5)
    assert readable == [a]
    assert io_hub.io.waiting == 0


def test_readers_and_writers_of_one_fd_wait_side_by_side(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    fill(a)
    readers = [corun.spawn(io_hub.wait_readable, fd, 5) for _ in range(2)]
    writers = [corun.spawn(io_hub.wait_writable, fd, 5) for _ in range(2)]
    corun.sleep(0)
    assert (io_hub.io.waiter_count(fd, READ), io_hub.io.waiter_count(fd, WRITE)) == (2, 2)
    b.send(b"x")
    corun.joinall(readers, timeout=5, raise_error=True)
    assert not any(w.ready() for w in writers)  # still full: the writers wait on
    assert io_hub.io.waiter_count(fd, WRITE) == 2
    drain(b)
    corun.joinall(writers, timeout=5, raise_error=True)
    assert io_hub.io.waiting == 0


def test_a_killed_or_timed_out_waiter_leaves_the_others_registered(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    stays = [corun.spawn(io_hub.wait_readable, fd, 5) for _ in range(2)]
    killed = corun.spawn(io_hub.wait_readable, fd, 5)
    corun.sleep(0)
    killed.kill()
    with pytest.raises(TimeoutError):
        io_hub.wait_readable(fd, timeout=0.05)
    assert io_hub.io.waiter_count(fd, READ) == 2
    assert io_hub.io.waiting == 2
    assert kernel_registered(io_hub.io, fd)
    b.send(b"x")
    corun.joinall(stays, timeout=5, raise_error=True)
    assert io_hub.io.waiting == 0


def test_notify_closing_wakes_every_waiter_of_the_fd_with_ebadf(io_hub: Hub, pairs: Pairs) -> None:
    a, _ = pairs()
    fd = a.fileno()
    fill(a)
    waits = [corun.spawn(io_hub.wait_readable, fd) for _ in range(3)]
    waits += [corun.spawn(io_hub.wait_writable, fd) for _ in range(2)]
    corun.sleep(0)
    assert io_hub.io.waiting == 5
    io_hub.notify_closing(fd)
    corun.joinall(waits, timeout=5)
    for w in waits:
        assert isinstance(w.exception, OSError) and w.exception.errno == errno.EBADF, w.exception
    assert io_hub.io.waiting == 0
    assert fd not in io_hub.io._fds


def test_statistics_count_fds_waiters_polls_and_events(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    before = io_hub.io.statistics()
    assert before["backend"] == ("epoll" if isinstance(io_hub.io, EpollIO) else "selectors")
    waits = [corun.spawn(io_hub.wait_readable, a.fileno(), 5) for _ in range(2)]
    corun.sleep(0)
    during = io_hub.io.statistics()
    assert during["waiters"] == 2 and during["fds"] == 1
    b.send(b"x")
    corun.joinall(waits, timeout=5, raise_error=True)
    after = io_hub.io.statistics()
    assert after["waiters"] == 0
    assert after["polls"] > before["polls"]
    assert after["events"] >= before["events"] + 1


def test_notify_closing_wakes_the_waiters_with_ebadf_and_unregisters(io_hub: Hub, pairs: Pairs) -> None:
    a, _ = pairs()
    fd = a.fileno()
    fill(a)

    def wait(how: Any) -> BaseException | None:
        try:
            how(fd)
        except OSError as exc:
            return exc
        return None

    r = corun.spawn(wait, io_hub.wait_readable)
    w = corun.spawn(wait, io_hub.wait_writable)
    corun.sleep(0)
    assert io_hub.io.waiting == 2
    assert kernel_registered(io_hub.io, fd)
    io_hub.notify_closing(fd)
    assert io_hub.io.waiting == 0
    assert fd not in io_hub.io._fds
    assert not kernel_registered(io_hub.io, fd)
    a.close()
    for g in (r, w):
        exc = g.get(timeout=2)
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF, exc
        assert f"fd {fd}" in str(exc)
    io_hub.notify_closing(fd)  # nobody waits any more: a no-op


def test_a_killed_waiter_leaves_nothing_registered(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    g = corun.spawn(io_hub.wait_readable, fd, 60)
    corun.sleep(0)
    assert io_hub.io.waiting == 1
    g.kill()
    assert g.dead
    assert io_hub.io.waiting == 0
    assert io_hub.io.waiter_count(fd, READ) == 0
    assert all(t[2] is None for t in io_hub._timers)  # its timeout went with it
    # Another task may now wait on the fd, and is woken.
    g2 = corun.spawn(io_hub.wait_readable, fd)
    corun.sleep(0)
    b.send(b"x")
    g2.get(timeout=2)
    assert io_hub.io.waiting == 0


def test_waiting_on_a_closed_fd_fails_at_once_and_leaves_nothing(io_hub: Hub) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError):
        io_hub.wait_readable(fd, timeout=1)
    assert io_hub.io.waiting == 0
    assert fd not in io_hub.io._fds
    assert all(t[2] is None for t in io_hub._timers)


def test_many_waits_on_one_fd_leave_nothing_behind(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    for i in range(500):
        b.send(b"x")
        io_hub.wait_readable(a.fileno(), timeout=5)
        assert a.recv(1) == b"x"
        if i % 2:
            with pytest.raises(TimeoutError):
                io_hub.wait_readable(a.fileno(), timeout=0.0001)
    assert io_hub.io.waiting == 0
    assert set(io_hub.io._fds) <= {a.fileno()}
    assert len(io_hub._timers) < 200


# -- registrations that outlive their waits ---------------------------------------


def test_an_fd_reported_ready_with_no_waiter_is_dropped(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    b.send(b"left unread")
    io_hub.wait_readable(fd)  # returns with the data still unread
    # The registration is kept while the fd is in use...
    assert fd in io_hub.io._fds
    assert kernel_registered(io_hub.io, fd)
    passes = count_passes(io_hub)
    corun.sleep(0.2)
    # ...and dropped the first time it is reported with nobody waiting, so
    # the level-triggered readiness does not wake the loop again and again.
    assert fd not in io_hub.io._fds
    assert not kernel_registered(io_hub.io, fd)
    assert passes[0] < 50, passes[0]


def test_a_dup_then_close_fd_with_notify_closing_does_not_spin(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    b.send(b"x")
    io_hub.wait_readable(fd)  # leaves the kept registration
    dup = a.dup()
    try:
        io_hub.notify_closing(fd)  # the close path unregisters first
        a.close()
        b.send(b"more")  # the shared file stays readable through the dup
        passes = count_passes(io_hub)
        corun.sleep(0.2)
        assert passes[0] < 50, passes[0]
        assert not kernel_registered(io_hub.io, fd)
    finally:
        dup.close()


def test_a_dup_then_close_fd_without_notify_closing_does_not_spin(io_hub: Hub, pairs: Pairs) -> None:
    sel = getattr(io_hub.io, "_sel", None)
    if isinstance(sel, getattr(selectors, "EpollSelector", ())):
        # The selectors back end runs only where there is no epoll: give it
        # the poll(2) selector it would have there.
        sel.close()
        io_hub.io._sel = selectors.PollSelector()  # type: ignore[attr-defined]
        io_hub.io._sel.register(io_hub._waker.read_fd, selectors.EVENT_READ)  # type: ignore[attr-defined]
    a, b = pairs()
    c, d = pairs()  # a live wait that must survive the clean-up
    e, _ = pairs()  # a wait whose fd is closed under it
    fd = a.fileno()
    b.send(b"x")
    io_hub.wait_readable(fd)  # leaves the kept registration
    dup = a.dup()
    try:
        live = corun.spawn(io_hub.wait_readable, c.fileno(), 2)
        orphan = corun.spawn(io_hub.wait_readable, e.fileno(), 2)
        corun.sleep(0)
        e.close()  # careless closes: no notify_closing
        a.close()
        b.send(b"more")  # the file stays readable through the dup
        passes = count_passes(io_hub)
        corun.sleep(0.2)
        assert passes[0] < 50, passes[0]
        assert not kernel_registered(io_hub.io, fd)
        # The orphaned waiter is woken, to meet EBADF in its own syscall...
        orphan.get(timeout=1)
        # ...and the live wait on another fd is still registered.
        assert not live.dead
        d.send(b"x")
        live.get(timeout=2)
        assert io_hub.io.waiting == 0
    finally:
        dup.close()


def test_an_fd_number_reused_after_a_close_without_notify_still_wakes(io_hub: Hub, pairs: Pairs) -> None:
    a, b = pairs()
    fd = a.fileno()
    b.send(b"x")
    io_hub.wait_readable(fd)
    assert a.recv(1) == b"x"
    assert fd in io_hub.io._fds  # a kept registration, nobody waiting
    a.close()  # no notify_closing: the kernel forgets the fd, the table does not
    c, d = pairs()
    if c.fileno() != fd:
        pytest.skip("the OS did not reuse the fd number")
    g = corun.spawn(io_hub.wait_readable, c.fileno(), 1)
    corun.sleep(0)
    d.send(b"y")
    g.get(timeout=2)
    assert c.recv(1) == b"y"


def test_the_waker_fd_is_not_an_io_wait(io_hub: Hub) -> None:
    assert io_hub._waker.read_fd not in io_hub.io._fds
    assert io_hub.io.waiting == 0
    assert io_hub.io.waiter_count(io_hub._waker.read_fd, READ) == 0
    assert io_hub.io.waiter_count(io_hub._waker.read_fd, WRITE) == 0


class _CountingEpoll:
    """Wraps an epoll object, counting epoll_ctl calls."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.ctl = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name in ("register", "modify", "unregister"):

            def counted(*args: Any) -> Any:
                self.ctl += 1
                return attr(*args)

            return counted
        return attr


@pytest.mark.parametrize("notifies_close, most_ctl", [(True, 1), (False, 10)])
def test_kept_registration_is_trusted_only_for_owners_that_notify_closes(
    notifies_close: bool, most_ctl: int
) -> None:
    hub = corun.get_hub()
    if not hasattr(hub.io, "_epoll"):
        pytest.fail("this machine is expected to use the epoll back end")
    counter = _CountingEpoll(hub.io._epoll)  # type: ignore[attr-defined]
    hub.io._epoll = counter  # type: ignore[attr-defined]
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        for _ in range(10):
            reader = corun.spawn(hub.wait_readable, a.fileno(), 2, notifies_close=notifies_close)
            corun.sleep(0)
            b.send(b"x")
            reader.get(timeout=2)
            assert a.recv(1) == b"x"
        if notifies_close:
            assert counter.ctl <= most_ctl, counter.ctl  # the first registration only
        else:
            assert counter.ctl >= most_ctl, counter.ctl  # re-asserted on every wait
        hub.notify_closing(a.fileno())
    finally:
        hub.io._epoll = counter.real  # type: ignore[attr-defined]
        a.close()
        b.close()
