"""The one way to block (``Waiter``) and the one fair wait queue (``WaitQueue``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import corun
import corun.hub
from corun import GreenletExit
from corun._waiter import TIMED_OUT, BlockingSwitchOutError, Waiter, throw_into
from corun._waitqueue import _COMPACT_MIN, WaitQueue
from corun.hub import Hub
from corun.testing import ManualClock, fresh_hub

from .conftest import expects_loop_exit


@pytest.fixture
def fake() -> Iterator[tuple[Hub, ManualClock]]:
    """A hub on a fake clock, installed as this thread's hub for one test."""
    clock = ManualClock()
    with fresh_hub(clock) as h:
        yield h, clock


def park_in_task(q: WaitQueue, hub: Hub, results: list[Any], name: Any, **kw: Any) -> corun.Greenlet[Any]:
    def run() -> None:
        results.append((name, q.park(hub, name, **kw)))

    return corun.spawn(run)


# -- Waiter: parked at most once, woken at most once ---------------------------


def test_waiter_returns_the_value_it_was_woken_with(hub: Hub) -> None:
    w = Waiter(hub, "test")
    hub.wake(w, 42)
    assert w.get() == 42
    assert w.greenlet is None


def test_second_wake_of_the_same_waiter_does_not_resume_a_later_wait(hub: Hub) -> None:
    log: list[Any] = []
    later: list[Waiter] = []

    def task() -> None:
        w = Waiter(hub, "first")
        hub.wake(w, 1)
        hub.wake(w, 2)  # stale by the time it is delivered
        log.append(w.get())
        w2 = Waiter(hub, "second")
        later.append(w2)
        log.append(w2.get())

    g = corun.spawn(task)
    corun.idle()  # both wake-ups have been delivered by now
    assert log == [1]
    assert not g.dead
    hub.wake(later[0], "real")
    g.join(timeout=2)
    assert log == [1, "real"]


def test_timer_and_wake_due_in_the_same_pass_resume_the_task_once(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    log: list[Any] = []
    later: list[Waiter] = []

    def task() -> None:
        w = Waiter(h, "racing")
        later.append(w)
        log.append(w.get(timeout=1))
        w2 = Waiter(h, "after")
        later.append(w2)
        log.append(w2.get())

    g = corun.spawn(task)
    corun.sleep(0)
    # Both become due in this pass: the timeout fires at the end of the pass,
    # the wake-up queued now runs at the start of the next one, and finds the
    # task already gone from that wait, parked in a new one it must not touch.
    clock.now += 10
    h.wake(later[0], "woken")
    corun.idle()
    assert log == [TIMED_OUT]
    assert not g.dead
    h.wake(later[1], "second")
    g.join()
    assert log == [TIMED_OUT, "second"]


def test_timed_out_wait_returns_timed_out_and_ignores_a_late_wake(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    waiters: list[Waiter] = []
    log: list[Any] = []

    def task() -> None:
        w = Waiter(h, "timed")
        waiters.append(w)
        log.append(w.get(timeout=1))
        w2 = Waiter(h, "after")
        waiters.append(w2)
        log.append(w2.get())

    g = corun.spawn(task)
    corun.sleep(0)
    clock.now += 5
    corun.idle()  # the due timer fires before nothing is left to run
    assert log == [TIMED_OUT]
    h.wake(waiters[0], "late")  # stale
    corun.idle()
    assert log == [TIMED_OUT]
    h.wake(waiters[1], "ok")
    g.join()
    assert log == [TIMED_OUT, "ok"]


def test_waiting_inside_the_hub_raises_blocking_switch_out(hub: Hub) -> None:
    caught: list[BaseException] = []

    def cb() -> None:
        try:
            Waiter(hub, "a thing that never comes").get()
        except BlockingSwitchOutError as exc:
            caught.append(exc)

    hub.run_callback(cb)
    corun.sleep(0)  # cb was queued first, so it has run when we are back
    assert len(caught) == 1
    assert "a thing that never comes" in str(caught[0])


# -- WaitQueue ------------------------------------------------------------------


def test_grants_go_to_waiters_in_fifo_order(hub: Hub) -> None:
    q = WaitQueue()
    results: list[Any] = []
    tasks = [park_in_task(q, hub, results, i) for i in range(5)]
    corun.sleep(0)
    assert len(q) == 5
    assert bool(q)
    for value in "abcde":
        assert q.grant(value) is not None
    corun.joinall(tasks, timeout=2)
    assert results == [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")]
    assert len(q) == 0
    assert not q
    assert q.grant("nobody") is None


def test_first_is_the_first_live_waiter_with_the_value_park_stored(hub: Hub) -> None:
    q = WaitQueue()
    results: list[Any] = []
    a = park_in_task(q, hub, results, "a", timeout=0.01, value="item-a")
    b = park_in_task(q, hub, results, "b", value="item-b")
    corun.sleep(0)
    first = q.first()
    assert first is not None and first.value == "item-a"
    a.join(timeout=2)
    assert results == [("a", TIMED_OUT)]
    first = q.first()
    assert first is not None and first.value == "item-b" and first.greenlet is b
    assert [w.value for w in q.live()] == ["item-b"]
    assert len(q) == 1
    q.grant("done")
    b.join(timeout=2)
    assert results[-1] == ("b", "done")


def test_timed_out_and_killed_waiters_are_skipped(hub: Hub) -> None:
    q = WaitQueue()
    results: list[Any] = []
    a = park_in_task(q, hub, results, "a")
    b = park_in_task(q, hub, results, "b", timeout=0.01)
    c = park_in_task(q, hub, results, "c")
    d = park_in_task(q, hub, results, "d")
    corun.sleep(0)
    b.join(timeout=2)
    c.kill()
    assert len(q) == 2
    q.grant(1)
    q.grant(2)
    corun.joinall([a, d], timeout=2)
    assert results == [("b", TIMED_OUT), ("a", 1), ("d", 2)]
    assert len(q) == 0 and q._stale == 0 and not q._waiters


def test_parked_holds_the_waiters_cancelled_ones_included_until_they_reach_the_front(hub: Hub) -> None:
    q = WaitQueue()
    assert not q.parked
    results: list[Any] = []
    first = park_in_task(q, hub, results, "first", timeout=0.01)
    second = park_in_task(q, hub, results, "second")
    corun.sleep(0)
    assert [w.what for w in q.parked] == ["first", "second"]
    first.join(timeout=2)  # timed out, not at the back: left in place
    assert len(q) == 1 and [w.what for w in q.parked] == ["first", "second"]
    q.grant("item")
    second.join(timeout=2)
    assert results == [("first", TIMED_OUT), ("second", "item")]
    assert not q.parked


def test_grant_all_wakes_every_live_waiter(hub: Hub) -> None:
    q = WaitQueue()
    results: list[Any] = []
    tasks = [park_in_task(q, hub, results, i) for i in range(4)]
    corun.sleep(0)
    tasks[1].kill()
    assert q.grant_all("go") == 3
    corun.joinall(tasks, timeout=2)
    assert sorted(results) == [(0, "go"), (2, "go"), (3, "go")]
    assert len(q) == 0
    assert q.grant_all("again") == 0


def test_a_grant_that_meets_a_kill_is_given_back_and_the_late_wake_is_ignored(hub: Hub) -> None:
    q = WaitQueue()
    given_back: list[Any] = []
    log: list[Any] = []
    later: list[Waiter] = []

    def task() -> None:
        try:
            log.append(q.park(hub, "q", give_back=given_back.append))
        except GreenletExit:
            log.append("killed")
            w2 = Waiter(hub, "a later wait")
            later.append(w2)
            log.append(w2.get())

    g = corun.spawn(task)
    corun.sleep(0)
    # The kill is queued first, then the grant: the task leaves its wait
    # with GreenletExit, and the wake-up the grant queued arrives after it
    # has started another wait.
    g.kill(block=False)
    assert q.grant("item") is not None
    corun.idle()
    assert log == ["killed"]
    assert given_back == ["item"]
    assert not g.dead  # still parked in the later wait
    hub.wake(later[0], "the right wake-up")
    g.join(timeout=2)
    assert log == ["killed", "the right wake-up"]


def test_a_grant_racing_a_timeout_is_given_back(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    q = WaitQueue()
    given_back: list[Any] = []
    results: list[Any] = []
    # Same deadline, scheduled first: the grant happens in the timer batch
    # just before the waiter's own timeout fires.
    h.call_later(1, q.grant, "item")
    park_in_task(q, h, results, "w", timeout=1, give_back=given_back.append)
    corun.sleep(0)
    clock.now += 5
    assert h.join()
    assert results == [("w", TIMED_OUT)]
    assert given_back == ["item"]


def test_compaction_bounds_a_queue_of_timed_out_waiters(hub: Hub) -> None:
    q = WaitQueue()
    results: list[Any] = []
    timed = [park_in_task(q, hub, results, i, timeout=0.01) for i in range(1000)]
    tail = park_in_task(q, hub, results, "tail")
    corun.joinall(timed, timeout=3)
    assert all(g.dead for g in timed)
    assert len(q) == 1
    assert len(q._waiters) <= 2 * _COMPACT_MIN + 1
    q.grant("last")
    tail.join(timeout=2)
    assert results[-1] == ("tail", "last")
    assert len(q._waiters) == 0 and q._stale == 0


def test_throw_into_raises_in_a_parked_task_and_ignores_an_ended_one(hub: Hub) -> None:
    log: list[str] = []

    def task() -> None:
        try:
            Waiter(hub, "forever").get()
        except KeyError:
            log.append("interrupted")

    g = corun.spawn(task)
    corun.sleep(0)
    hub.run_callback(throw_into, g, KeyError())
    g.join(timeout=2)
    assert log == ["interrupted"]
    throw_into(g, KeyError())  # ended: nothing happens, nothing raises here
    never_started = corun.Greenlet(log.append, "ran")
    throw_into(never_started, KeyError())
    assert log == ["interrupted"]


# -- across OS threads ----------------------------------------------------------


def _start_in_thread(func: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``func`` in a real OS thread (this process is not patched); its result lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(func())
        finally:
            corun.get_hub().destroy()

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _until(check: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_wake_threadsafe_from_another_os_thread_resumes_the_task(hub: Hub) -> None:
    w = Waiter(hub, "a wake from another thread")
    t, _ = _start_in_thread(lambda: (time.sleep(0.1), hub.wake_threadsafe(w, "from the thread")))
    start = time.monotonic()
    assert w.get(timeout=10) == "from the thread"
    assert time.monotonic() - start < 5  # the hub left its poll at once, not at the deadline
    t.join()


def test_a_queue_across_threads_grants_a_task_from_an_os_thread(hub: Hub) -> None:
    q = WaitQueue(lambda h: True)
    t, granted = _start_in_thread(lambda: (_until(lambda: len(q) == 1), q.grant("go")))
    # No timer and no fd: only the other thread can end this wait, and the
    # hub must not take it for a deadlock.
    assert q.park(hub, "a grant from the thread") == "go"
    t.join()
    assert granted[0][1] is not None
    assert not q


def test_a_queue_across_threads_grants_a_waiter_parked_in_another_os_thread(hub: Hub) -> None:
    q = WaitQueue(lambda h: True)
    t, out = _start_in_thread(lambda: q.park(corun.get_hub(), "a grant from the main thread"))
    _until(lambda: len(q) == 1)
    assert q.grant("hello") is not None
    t.join(timeout=5)
    assert out == ["hello"]


@expects_loop_exit
def test_a_wait_no_other_thread_can_end_is_still_reported_as_a_deadlock(hub: Hub) -> None:
    q = WaitQueue(lambda h: False)
    with pytest.raises(corun.LoopExit, match="a grant nobody will make"):
        q.park(hub, "a grant nobody will make")


def test_a_waiter_taken_by_a_granter_as_it_leaves_gives_the_grant_back_once(hub: Hub) -> None:
    q = WaitQueue(lambda h: True)
    given_back: list[Any] = []

    def granted_meanwhile() -> bool:
        # What another thread's grant does between this task getting in line
        # and looking again: it takes the waiter out of the deque.
        assert q.grant(True) is not None
        return True

    assert q.park(hub, "w", give_back=given_back.append, once_in_line=granted_meanwhile) is True
    assert len(given_back) == 1
    assert not q
    corun.sleep(0)  # the grant's wake-up is delivered to a wait that has ended: nothing happens
    assert len(given_back) == 1


def test_grants_and_timeouts_racing_across_threads_lose_and_duplicate_nothing(hub: Hub) -> None:
    # Units go round between tasks here and an OS thread, many waits timing
    # out as grants arrive; every unit must come back exactly once.
    q = WaitQueue(lambda h: True)
    units = [3]
    lock = threading.Lock()  # guards the counter only (this process is not patched)

    def try_take() -> bool:
        with lock:
            if units[0] > 0:
                units[0] -= 1
                return True
        return False

    def release(_unit: Any = None) -> None:
        # Straight to the first waiter if there is one (no barging), else back to the counter.
        if q.grant(True) is None:
            with lock:
                units[0] += 1

    def take(timeout: float) -> bool:
        if try_take():
            return True
        got = q.park(corun.get_hub(), "a unit", timeout, give_back=release, once_in_line=try_take)
        return got is not TIMED_OUT

    def worker(n: int) -> int:
        got = 0
        for _ in range(n):
            if take(0.001):
                got += 1
                release()
        return got

    threads = [_start_in_thread(lambda: worker(300)) for _ in range(2)]
    tasks = [corun.spawn(worker, 300) for _ in range(3)]
    corun.joinall(tasks, timeout=60)
    for t, _ in threads:
        t.join(timeout=60)
    assert all(g.dead for g in tasks)
    assert all(out and out[0] > 0 for _, out in threads)
    assert units[0] == 3
    assert not q


@pytest.mark.parametrize("threads", [None, lambda h: False])
def test_grant_moved_wakes_the_waiter_as_a_grant_from_the_other_line_and_a_kill_gives_that_back(
    hub: Hub, threads: Any
) -> None:
    here = WaitQueue(threads)
    line = WaitQueue(lambda h: False)
    given_back: list[Any] = []
    outcomes: list[Any] = []

    def task() -> None:
        try:
            outcomes.append(here.park(hub, "here", timeout=0.05))
        except GreenletExit:
            outcomes.append("killed")

    # Woken: the grant arrives as True, what a grant from the other line brings.
    g = corun.spawn(task)
    corun.sleep(0)
    w = here.take()
    assert w is not None
    here.grant_moved(w, line, given_back.append)
    g.join(timeout=2)
    assert outcomes == [True] and given_back == [] and not here and not line

    # Killed before it runs: the grant goes to the other line's give_back, once.
    g = corun.spawn(task)
    corun.sleep(0)
    w = here.take()
    assert w is not None
    g.kill(block=False)
    here.grant_moved(w, line, given_back.append)
    g.join(timeout=2)
    assert outcomes == [True, "killed"]
    assert len(given_back) == 1 and not here and not line
