"""Semaphore, BoundedSemaphore, Lock, RLock: semantics, fairness, cancellation, threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from greenlet import getcurrent

import corun
from corun import LoopExit, Timeout, joinall, sleep, spawn
from corun.hub import Hub
from corun.lock import BoundedSemaphore, Lock, LockStatistics, RLock, Semaphore, SemaphoreStatistics
from corun.testing import VirtualClock, run_in_thread

from .conftest import expects_loop_exit, now

# -- Semaphore ------------------------------------------------------------------


pytestmark = pytest.mark.corun(clock="virtual")


def test_semaphore_counts_units() -> None:
    sem = Semaphore(2)
    assert sem.counter == 2 and not sem.locked()
    assert sem.acquire() is True
    assert sem.acquire(blocking=False) is True
    assert sem.counter == 0 and sem.locked()
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0) is False
    assert sem.acquire(timeout=-1) is False  # like threading: a past deadline, no wait
    sem.release(2)
    assert sem.counter == 2
    assert sem.statistics() == SemaphoreStatistics(counter=2, waiters=0)


def test_semaphore_argument_errors() -> None:
    with pytest.raises(ValueError):
        Semaphore(-1)
    sem = Semaphore(0)
    with pytest.raises(ValueError):
        sem.acquire(False, timeout=1)
    with pytest.raises(ValueError):
        sem.release(0)


def test_semaphore_is_a_context_manager() -> None:
    sem = Semaphore(1)
    with sem as got:
        assert got is True
        assert sem.counter == 0
    assert sem.counter == 1


def test_semaphore_acquire_waits_for_release() -> None:
    sem = Semaphore(0)
    log = []

    def worker() -> None:
        log.append("waiting")
        assert sem.acquire()
        log.append("acquired")

    g = spawn(worker)
    sleep(0)
    assert log == ["waiting"]
    assert sem.statistics().waiters == 1
    sem.release()
    g.join()
    assert log == ["waiting", "acquired"]
    assert sem.counter == 0 and sem.statistics().waiters == 0


def test_semaphore_waiters_are_served_fifo() -> None:
    sem = Semaphore(0)
    order: list[int] = []
    tasks = [spawn(lambda i=i: (sem.acquire(), order.append(i))) for i in range(6)]
    sleep(0)
    for _ in range(6):
        sem.release()
    joinall(tasks)
    assert order == list(range(6))


def test_release_hands_the_unit_to_the_waiter_no_barging() -> None:
    sem = Semaphore(0)
    g = spawn(sem.acquire)
    sleep(0)
    sem.release()
    # The unit already belongs to the waiter, though it has not run yet.
    assert sem.counter == 0
    assert sem.acquire(blocking=False) is False
    g.join()
    assert g.value is True
    assert sem.counter == 0


def test_timed_out_waiter_is_skipped_and_order_kept() -> None:
    sem = Semaphore(0)
    order: list[str] = []

    def waiter(name: str, timeout: float | None) -> None:
        order.append(f"{name}:{sem.acquire(timeout=timeout)}")

    a = spawn(waiter, "a", None)
    b = spawn(waiter, "b", 0.05)
    c = spawn(waiter, "c", None)
    b.join()
    assert order == ["b:False"]
    assert sem.statistics().waiters == 2
    sem.release(2)
    joinall([a, c])
    assert order == ["b:False", "a:True", "c:True"]
    assert sem.statistics() == SemaphoreStatistics(counter=0, waiters=0)


def test_acquire_timeout_returns_false_and_leaves_nothing_behind() -> None:
    sem = Semaphore(0)
    start = now()
    assert sem.acquire(timeout=0.05) is False
    assert now() - start >= 0.04
    assert sem.statistics().waiters == 0
    sem.release()
    assert sem.counter == 1  # not handed to the departed waiter


def test_kill_while_acquiring_runs_finally_and_leaves_no_waiter() -> None:
    sem = Semaphore(0)
    cleaned = []

    def worker() -> None:
        try:
            sem.acquire()
        finally:
            cleaned.append(True)

    g = spawn(worker)
    sleep(0)
    assert sem.statistics().waiters == 1
    g.kill()
    assert cleaned == [True]
    assert sem.statistics().waiters == 0
    sem.release()
    assert sem.counter == 1


def test_semaphore_wait_does_not_take_a_unit() -> None:
    sem = Semaphore(0)
    assert sem.wait(timeout=0.01) == 0
    assert sem.statistics().waiters == 0
    g = spawn(sem.wait)
    sleep(0)
    sem.release()
    g.join()
    assert g.value == 1
    assert sem.counter == 1
    assert sem.wait() == 1


def test_semaphore_wait_keeps_its_place_in_line() -> None:
    sem = Semaphore(0)
    acquirer = spawn(sem.acquire)
    watcher = spawn(sem.wait)
    sleep(0)
    sem.release()
    sleep(0)
    # The first unit went to the acquirer, who was first; the watcher still waits.
    assert acquirer.dead and not watcher.dead
    sem.release()
    watcher.join()
    assert watcher.value == 1 and sem.counter == 1


def test_many_tasks_share_a_semaphore_with_bounded_concurrency(virtual_clock: VirtualClock) -> None:
    sem = Semaphore(5)
    inside = 0
    most = 0

    def worker() -> None:
        nonlocal inside, most
        with sem:
            inside += 1
            most = max(most, inside)
            sleep(0.3)
            inside -= 1

    joinall([spawn(worker) for _ in range(10)])
    assert most == 5
    # 2 rounds of 0.3 s; 10 one after another would take 3 s.
    assert virtual_clock.elapsed == pytest.approx(0.6)
    assert sem.statistics() == SemaphoreStatistics(counter=5, waiters=0)


def test_bounded_semaphore_refuses_extra_release() -> None:
    sem = BoundedSemaphore(2)
    with pytest.raises(ValueError, match="too many"):
        sem.release()
    sem.acquire()
    sem.acquire()
    with pytest.raises(ValueError):
        sem.release(3)
    assert sem.counter == 0  # the refused release(3) changed nothing
    sem.release(2)
    assert sem.counter == 2
    with pytest.raises(ValueError):
        sem.release()


def test_bounded_semaphore_release_with_waiters_hands_off() -> None:
    sem = BoundedSemaphore(1)
    sem.acquire()
    g = spawn(sem.acquire)
    sleep(0)
    sem.release()
    g.join()
    assert g.value is True
    sem.release()
    with pytest.raises(ValueError):
        sem.release()


# -- the grant/cancel race ------------------------------------------------------


@pytest.mark.parametrize("exception", [corun.GreenletExit(), Timeout(1)], ids=["kill", "timeout"])
def test_unit_granted_then_cancelled_goes_to_next_waiter(exception: BaseException) -> None:
    sem = Semaphore(0)
    log: list[str] = []

    def waiter(name: str) -> None:
        try:
            sem.acquire()
            log.append(f"{name} acquired")
        except BaseException as exc:
            log.append(f"{name} cancelled by {type(exc).__name__}")
            raise

    a = spawn(waiter, "a")
    b = spawn(waiter, "b")
    sleep(0)
    # The cancellation is queued first, then the grant: the unit reaches a
    # before a runs again, and a wakes up with the cancellation.
    a.kill(exception, block=False)
    sem.release()
    assert sem.counter == 0
    joinall([a, b])
    assert log == [f"a cancelled by {type(exception).__name__}", "b acquired"]
    assert sem.statistics() == SemaphoreStatistics(counter=0, waiters=0)


def test_unit_granted_then_cancelled_with_no_other_waiter_returns_to_counter() -> None:
    sem = Semaphore(0)
    a = spawn(sem.acquire)
    sleep(0)
    a.kill(block=False)
    sem.release()
    a.join()
    assert sem.statistics() == SemaphoreStatistics(counter=1, waiters=0)


@pytest.mark.corun(clock="real")  # a clock moved by hand replaces the hub's
def test_own_timeout_firing_after_grant_passes_unit_on(fake_clock: list[float]) -> None:
    lock = Lock()
    lock.acquire()
    log: list[tuple[str, bool]] = []

    def waiter(name: str, timeout: float) -> None:
        log.append((name, lock.acquire(timeout=timeout)))

    a = spawn(waiter, "a", 5)
    b = spawn(waiter, "b", 60)
    sleep(0)
    fake_clock[0] += 10  # a's deadline has passed, but the hub has not looked yet
    lock.release()  # grants a; its wake-up runs next pass, a's timer fires this pass
    joinall([a, b])
    assert log == [("a", False), ("b", True)]
    assert lock.statistics() == LockStatistics(locked=True, owner=b, waiters=0)


# -- Lock -------------------------------------------------------------------------


def test_lock_basics() -> None:
    lock = Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(True, 0) is False
    assert lock.statistics() == LockStatistics(locked=True, owner=getcurrent(), waiters=0)
    lock.release()
    assert not lock.locked()
    assert lock.statistics() == LockStatistics(locked=False, owner=None, waiters=0)
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()


def test_lock_argument_errors_match_threading() -> None:
    lock = Lock()
    with pytest.raises(ValueError):
        lock.acquire(False, timeout=1)
    with pytest.raises(ValueError):
        lock.acquire(True, -5)
    assert lock.acquire(False, -1) is True  # -1 is "no timeout", allowed non-blocking
    assert not lock.acquire(False, None)


def test_lock_timeout_none_and_minus_one_wait_forever() -> None:
    lock = Lock()
    lock.acquire()
    results = []
    tasks = [spawn(lambda t=t: results.append(lock.acquire(timeout=t))) for t in (None, -1)]
    sleep(0.05)
    assert results == []
    lock.release()
    sleep(0)
    lock.release()
    joinall(tasks)
    assert results == [True, True]


def test_lock_may_be_released_by_another_task() -> None:
    lock = Lock()
    lock.acquire()
    g = spawn(lock.release)
    g.join()
    assert g.successful()
    assert not lock.locked()


def test_lock_is_a_context_manager() -> None:
    lock = Lock()
    with pytest.raises(KeyError):
        with lock:
            assert lock.locked()
            raise KeyError("x")
    assert not lock.locked()


def test_lock_acquire_timeout_and_kill_leave_no_waiter() -> None:
    lock = Lock()
    lock.acquire()
    assert lock.acquire(timeout=0.02) is False
    assert lock.statistics().waiters == 0
    cleaned = []

    def worker() -> None:
        try:
            lock.acquire()
        finally:
            cleaned.append(True)

    g = spawn(worker)
    sleep(0)
    g.kill()
    assert cleaned == [True]
    assert lock.statistics().waiters == 0
    lock.release()
    assert not lock.locked()


def test_lock_under_timeout_block() -> None:
    lock = Lock()
    lock.acquire()
    with pytest.raises(Timeout):
        with Timeout(0.02):
            lock.acquire()
    assert lock.statistics().waiters == 0


def test_lock_owner_is_the_task_it_was_handed_to() -> None:
    lock = Lock()
    lock.acquire()
    g = spawn(lock.acquire)
    sleep(0)
    lock.release()
    assert lock.statistics().owner is g  # set at hand-off, before g runs
    g.join()
    assert lock.statistics() == LockStatistics(locked=True, owner=g, waiters=0)


def test_lock_excludes_tasks_from_a_critical_section() -> None:
    lock = Lock()
    shared = []

    def worker(i: int) -> None:
        for _ in range(3):
            with lock:
                shared.append(("in", i))
                sleep(0)  # others run but must not enter
                shared.append(("out", i))

    joinall([spawn(worker, i) for i in range(5)])
    assert len(shared) == 30
    for enter, leave in zip(shared[::2], shared[1::2], strict=True):
        assert enter[0] == "in" and leave == ("out", enter[1])


@expects_loop_exit
def test_deadlock_on_lock_raises_loopexit_and_cleans_up() -> None:
    lock = Lock()
    lock.acquire()
    with pytest.raises(LoopExit):
        lock.acquire()
    assert lock.statistics().waiters == 0


# -- RLock ------------------------------------------------------------------------


def test_rlock_is_reentrant_for_its_owner() -> None:
    rlock = RLock()
    assert not rlock._is_owned()
    with rlock:
        with rlock:
            assert rlock._is_owned()
            stats = rlock.statistics()
            assert stats.locked and stats.owner is getcurrent() and stats.count == 2
        assert rlock.locked()
    assert not rlock.locked()
    assert rlock.statistics().owner is None and rlock.statistics().count == 0
    with pytest.raises(RuntimeError, match="un-acquired"):
        rlock.release()


def test_rlock_release_by_another_task_raises() -> None:
    rlock = RLock()
    rlock.acquire()
    g = spawn(rlock.release)
    g.join()
    assert isinstance(g.exception, RuntimeError)
    assert rlock._is_owned() and rlock.locked()
    assert spawn(rlock._is_owned).get() is False
    rlock.release()


def test_rlock_other_task_waits_until_fully_released() -> None:
    rlock = RLock()
    rlock.acquire()
    rlock.acquire()
    other = spawn(rlock.acquire, True, 5)
    sleep(0)
    rlock.release()
    sleep(0)
    assert not other.dead
    rlock.release()
    other.join()
    assert other.value is True
    stats = rlock.statistics()
    assert stats.owner is other and stats.count == 1 and stats.waiters == 0


def test_rlock_nonblocking_and_timeout() -> None:
    rlock = RLock()
    rlock.acquire()
    assert spawn(rlock.acquire, False).get() is False
    assert spawn(rlock.acquire, True, 0.02).get() is False
    assert rlock.statistics().waiters == 0
    with pytest.raises(ValueError):
        rlock.acquire(False, 1)


def test_rlock_granted_then_killed_owner_passes_on() -> None:
    rlock = RLock()
    rlock.acquire()
    a = spawn(rlock.acquire)
    b = spawn(rlock.acquire)
    sleep(0)
    a.kill(block=False)
    rlock.release()
    joinall([a, b])
    stats = rlock.statistics()
    assert stats.owner is b and stats.count == 1 and stats.waiters == 0


def test_rlock_condition_protocol() -> None:
    # What threading.Condition does around a wait: drop every level, then restore them.
    rlock = RLock()
    rlock.acquire()
    rlock.acquire()
    assert rlock._recursion_count() == 2
    state = rlock._release_save()
    assert not rlock.locked()

    def meanwhile() -> int:
        with rlock:
            return rlock._recursion_count()

    assert spawn(meanwhile).get() == 1  # another task can take it meanwhile
    rlock._acquire_restore(state)
    assert rlock._is_owned() and rlock._recursion_count() == 2
    rlock.release()
    rlock.release()
    assert not rlock.locked()
    with pytest.raises(RuntimeError):
        rlock._release_save()


# -- threads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "action"),
    [
        (Lock, lambda p: p.acquire()),
        (Lock, lambda p: p.release()),
        (RLock, lambda p: p.acquire(timeout=1)),
        (lambda: Semaphore(0), lambda p: p.acquire(timeout=1)),
        (lambda: Semaphore(0), lambda p: p.release()),
        (lambda: BoundedSemaphore(1), lambda p: p.wait()),
    ],
    ids=["lock-acquire", "lock-release", "rlock-acquire", "sem-acquire", "sem-release", "sem-wait"],
)
def test_use_from_another_thread_raises(make: Callable[[], Any], action: Callable[[Any], Any]) -> None:
    prim = make()
    if isinstance(prim, (Lock, RLock)) or prim.counter:
        prim.acquire()
    waiter = spawn(prim.acquire)  # binds it to this thread's hub
    sleep(0)
    exc = run_in_thread(lambda: action(prim))
    assert isinstance(exc, RuntimeError), exc
    here = threading.get_ident()
    assert f"thread {here}" in str(exc)
    assert str(exc).count("thread") >= 2  # names the owning thread and the caller's
    assert prim.statistics().waiters == 1  # the failed call changed nothing
    waiter.kill()


def test_unbound_primitive_free_units_work_from_any_thread() -> None:
    lock = Lock()
    assert run_in_thread(lambda: (lock.acquire(), lock.release())) is None
    assert not lock.locked()


# The test destroys its own hub: nothing is left on it to check.
@pytest.mark.corun(check_leaks=False)
def test_primitive_outlives_a_destroyed_hub(hub: Hub) -> None:
    lock = Lock()
    lock.acquire()
    waiter = spawn(lock.acquire)
    sleep(0)  # bound to this hub now
    waiter.kill()
    lock.release()
    hub.destroy()
    new_hub = corun.get_hub()
    try:
        lock.acquire()
        g = spawn(lock.acquire)
        sleep(0)  # blocking again, on the new hub: no wrong-thread error
        lock.release()
        g.join()
        assert g.value is True
    finally:
        new_hub.destroy()
