"""Event and AsyncResult: waking, timeouts, links, cancellation, threads."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest

from corun import AsyncResult, Event, Greenlet, Timeout, getcurrent, sleep, spawn
from corun.event import EventStatistics
from corun.greenlet import joinall, killall, spawn_later
from corun.hub import Hub
from corun.testing import run_in_thread

from .conftest import now

# -- Event ------------------------------------------------------------------


pytestmark = pytest.mark.corun(clock="virtual")


def test_set_clear_is_set() -> None:
    ev = Event()
    assert not ev.is_set() and not ev.ready()
    ev.set()
    assert ev.is_set() and ev.isSet() and ev.ready()
    ev.set()  # idempotent
    assert ev.is_set()
    ev.clear()
    assert not ev.is_set()


def test_wait_returns_flag(hub: Hub) -> None:
    ev = Event()
    t0 = now()
    assert ev.wait(0.05) is False
    assert now() - t0 >= 0.04
    assert ev.statistics().waiters == 0
    assert hub.statistics().timers == 0
    ev.set()
    t0 = now()
    assert ev.wait() is True
    assert ev.wait(5) is True
    assert now() - t0 < 2  # not the 5 s timeout


def test_wait_wakes_when_set_by_another_task() -> None:
    ev = Event()
    spawn_later(0.02, ev.set)
    t0 = now()
    assert ev.wait(5) is True
    assert now() - t0 < 1


def test_set_wakes_every_waiter_in_order() -> None:
    ev = Event()
    woken: list[tuple[int, bool]] = []

    def waiter(i: int) -> None:
        woken.append((i, ev.wait()))

    tasks = [spawn(waiter, i) for i in range(5)]
    sleep(0)
    assert ev.statistics() == EventStatistics(is_set=False, waiters=5, links=0)
    ev.set()
    joinall(tasks)
    assert woken == [(i, True) for i in range(5)]
    assert ev.statistics().waiters == 0


def test_clear_after_set_blocks_new_waiters() -> None:
    ev = Event()
    ev.set()
    ev.clear()
    assert ev.wait(0.02) is False


def test_killed_and_timed_out_waiters_leave_no_trace(hub: Hub) -> None:
    ev = Event()
    killed = [spawn(ev.wait) for _ in range(3)]
    timed = [spawn(ev.wait, 0.02) for _ in range(3)]
    sleep(0)
    assert ev.statistics().waiters == 6
    killall(killed)
    joinall(timed)
    assert [t.value for t in timed] == [False] * 3
    assert ev.statistics().waiters == 0
    assert hub.statistics().timers == 0
    # A later set still wakes a new waiter, and no dead one.
    fresh = spawn(ev.wait)
    sleep(0)
    ev.set()
    assert fresh.get(timeout=1) is True


def test_many_cancelled_waiters_do_not_accumulate() -> None:
    ev = Event()
    for _ in range(200):
        assert ev.wait(0.0001) is False
    keeper = spawn(ev.wait)
    for _ in range(200):
        g = spawn(ev.wait)
        sleep(0)
        g.kill()
    assert ev.statistics().waiters == 1
    assert len(ev._waiters._waiters) < 100
    ev.set()
    assert keeper.get() is True


def test_rawlink_called_from_hub_with_the_event(hub: Hub) -> None:
    ev = Event()
    seen: list[tuple[Any, bool]] = []
    ev.rawlink(lambda e: seen.append((e, getcurrent() is hub)))
    assert ev.statistics().links == 1
    sleep(0.01)
    assert seen == []
    ev.set()
    sleep(0)
    sleep(0)
    assert seen == [(ev, True)]
    assert ev.statistics().links == 0  # links fire once


def test_rawlink_on_set_event_fires_soon() -> None:
    ev = Event()
    ev.set()
    seen: list[Any] = []
    ev.rawlink(seen.append)
    sleep(0)
    sleep(0)
    assert seen == [ev]


def test_unlink_removes_rawlink() -> None:
    ev = Event()
    seen: list[Any] = []
    ev.rawlink(seen.append)
    ev.unlink(seen.append)
    assert ev.statistics().links == 0
    ev.set()
    sleep(0.01)
    assert seen == []


def test_rawlink_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        Event().rawlink("nope")  # type: ignore[arg-type]


def test_failing_rawlink_is_reported_and_others_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    ev = Event()
    seen: list[Any] = []

    def broken(_: Any) -> None:
        raise ValueError("broken link")

    ev.rawlink(broken)
    ev.rawlink(seen.append)
    ev.set()
    sleep(0.01)
    assert seen == [ev]
    err = capsys.readouterr().err
    assert err.count("ValueError: broken link") == 1


# -- AsyncResult ------------------------------------------------------------


def test_asyncresult_set_and_get() -> None:
    r: AsyncResult[int] = AsyncResult()
    assert not r.ready() and not r.successful()
    assert r.value is None and r.exception is None and r.exc_info is None
    spawn_later(0.02, r.set, 5)
    assert r.get(timeout=2) == 5
    assert r.ready() and r.successful()
    assert r.value == 5 and r.get() == 5 and r.get_nowait() == 5
    assert r.wait() == 5


def test_asyncresult_get_wakes_every_waiter() -> None:
    r: AsyncResult[str] = AsyncResult()
    tasks = [spawn(r.get) for _ in range(4)]
    sleep(0)
    assert r.statistics().waiters == 4
    r.set("all")
    assert [t.get() for t in tasks] == ["all"] * 4


def explode() -> None:
    raise KeyError("from a frame")


def test_asyncresult_set_exception() -> None:
    r: AsyncResult[int] = AsyncResult()
    try:
        explode()
    except KeyError as exc:
        r.set_exception(exc)
    assert r.ready() and not r.successful()
    assert isinstance(r.exception, KeyError)
    assert r.exc_info is not None and r.exc_info[0] is KeyError
    assert r.value is None
    with pytest.raises(KeyError) as info:
        r.get()
    assert info.value is r.exception
    assert "explode" in [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    with pytest.raises(KeyError):
        r.get_nowait()
    assert r.wait() is None


def test_asyncresult_set_exception_wakes_waiters_with_the_error() -> None:
    r: AsyncResult[int] = AsyncResult()
    err = ValueError("bad")

    def getter() -> BaseException | None:
        try:
            r.get()
        except ValueError as exc:
            return exc
        return None

    tasks = [spawn(getter) for _ in range(2)]
    sleep(0)
    r.set_exception(err)
    assert [t.get() for t in tasks] == [err, err]


def test_asyncresult_not_ready_raises_timeout(hub: Hub) -> None:
    r: AsyncResult[int] = AsyncResult()
    with pytest.raises(Timeout):
        r.get_nowait()
    with pytest.raises(Timeout):
        r.get(block=False)
    t0 = now()
    with pytest.raises(Timeout):
        r.get(timeout=0.03)
    assert now() - t0 >= 0.02
    assert r.wait(0.02) is None
    assert r.statistics().waiters == 0
    assert hub.statistics().timers == 0


def test_asyncresult_killed_waiters_leave_no_trace() -> None:
    r: AsyncResult[int] = AsyncResult()
    tasks = [spawn(r.get) for _ in range(3)] + [spawn(r.wait) for _ in range(2)]
    sleep(0)
    assert r.statistics().waiters == 5
    killall(tasks)
    assert r.statistics().waiters == 0


def test_asyncresult_as_link() -> None:
    ok: AsyncResult[int] = AsyncResult()
    g = spawn(lambda: 41 + 1)
    g.link(ok)
    assert ok.get(timeout=2) == 42

    failed: AsyncResult[int] = AsyncResult()
    bad = spawn(explode)
    bad.report_errors = False
    bad.rawlink(failed)
    with pytest.raises(KeyError):
        failed.get(timeout=2)
    assert failed.exc_info is bad.exc_info

    killed: AsyncResult[Any] = AsyncResult()
    victim = spawn(sleep, 10)
    victim.rawlink(killed)
    sleep(0)
    victim.kill()
    assert killed.successful()
    assert killed.get(timeout=2) is victim.value


def test_asyncresult_rawlink() -> None:
    r: AsyncResult[int] = AsyncResult()
    seen: list[Any] = []
    r.rawlink(lambda res: seen.append(res.value))
    r.set(3)
    sleep(0.01)
    assert seen == [3]


def test_asyncresult_repr() -> None:
    r: AsyncResult[int] = AsyncResult()
    assert "unset" in repr(r)
    r.set(12345)
    assert "12345" in repr(r)
    assert "set" in repr(Event()) and "waiters=0" in repr(Event())


# -- threads ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, action",
    [
        (Event, lambda e: e.wait(0.01)),
        (Event, lambda e: e.set()),
        (AsyncResult, lambda r: r.get(timeout=0.01)),
        (AsyncResult, lambda r: r.wait(0.01)),
        (AsyncResult, lambda r: r.set(1)),
        (AsyncResult, lambda r: r.set_exception(ValueError())),
    ],
)
def test_use_from_another_thread_raises(make: Callable[[], Any], action: Callable[[Any], Any]) -> None:
    obj = make()
    waiter = Greenlet.spawn(obj.wait)  # binds it to this thread's hub
    sleep(0)
    exc = run_in_thread(lambda: action(obj))
    assert isinstance(exc, RuntimeError)
    assert "thread" in str(exc)
    # Refused before anything changed: not half set with its waiter still parked.
    assert not obj.ready()
    assert obj.statistics().waiters == 1
    waiter.kill()
    assert obj.statistics().waiters == 0
