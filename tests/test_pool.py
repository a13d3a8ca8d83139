"""Group and Pool: membership, limits, join, kill, apply and the map family."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import corun
from corun import Event, GreenletExit, getcurrent, sleep, spawn
from corun.hub import Hub
from corun.pool import Group, Pool, PoolFull
from corun.testing import VirtualClock

from .conftest import now

pytestmark = pytest.mark.corun(clock="virtual")


class Gauge:
    """Counts how many calls are inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def __enter__(self) -> Gauge:
        self.now += 1
        self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


def nap(seconds: float) -> float:
    sleep(seconds)
    return seconds


# -- construction -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -1])
def test_pool_size_below_one_is_rejected_naming_the_argument(size: int) -> None:
    with pytest.raises(ValueError, match=r"size must be at least 1"):
        Pool(size)


def test_pool_size_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="size"):
        Pool(2.5)  # type: ignore[arg-type]


def test_reexported_from_package() -> None:
    assert corun.Pool is Pool
    assert corun.Group is Group


# -- concurrency and the size limit ---------------------------------------------


def test_pool_runs_at_most_size_at_once_and_in_parallel(virtual_clock: VirtualClock) -> None:
    pool = Pool(5)
    gauge = Gauge()

    def job(i: int) -> int:
        with gauge:
            sleep(0.2)
        return i

    tasks = [pool.spawn(job, i) for i in range(20)]
    assert pool.join(timeout=5)
    assert [t.get() for t in tasks] == list(range(20))
    assert gauge.most == 5
    # 20 jobs of 0.2 s, 5 at a time: four rounds (4 s if run one by one).
    assert virtual_clock.elapsed == pytest.approx(0.8)
    assert len(pool) == 0 and pool.free_count() == 5


def test_spawn_blocks_only_the_calling_task_until_a_slot_frees() -> None:
    pool = Pool(1)
    release = Event()
    first = pool.spawn(release.wait)
    assert pool.full() and pool.free_count() == 0
    log: list[str] = []

    def spawner() -> None:
        log.append("asking")
        pool.spawn(log.append, "second ran")
        log.append("got a slot")

    s = spawn(spawner)
    sleep(0.05)
    assert log == ["asking"]  # parked in spawn; this task kept running
    assert pool.statistics().waiting == 1
    release.set()
    s.join()
    pool.join()
    assert first.dead
    assert log == ["asking", "got a slot", "second ran"]


def test_waiting_spawners_get_slots_in_arrival_order() -> None:
    pool = Pool(1)
    release = Event()
    pool.spawn(release.wait)
    order: list[int] = []
    spawners = [spawn(pool.spawn, order.append, i) for i in range(4)]
    sleep(0.01)
    release.set()
    corun.joinall(spawners)
    pool.join()
    assert order == [0, 1, 2, 3]


def test_resize_grows_for_waiting_spawners_and_shrinks_without_stopping_members() -> None:
    pool = Pool(2)
    release = Event()
    running = [pool.spawn(release.wait) for _ in range(2)]
    spawners = [spawn(pool.spawn, release.wait) for _ in range(3)]
    sleep(0.01)
    assert pool.statistics().waiting == 3
    pool.resize(5)  # the three waiting spawners get their slots at once
    sleep(0.01)
    assert len(pool) == 5 and pool.statistics().waiting == 0
    pool.resize(1)  # nobody is stopped; nobody new starts until one is left
    sleep(0.01)
    assert len(pool) == 5 and all(not g.dead for g in running)
    assert pool.full() and pool.free_count() == 0
    release.set()
    corun.joinall(spawners)
    assert pool.join(timeout=2)
    assert pool.free_count() == 1
    with pytest.raises(ValueError, match=r"size must be at least 1"):
        pool.resize(0)


def test_pool_without_size_never_waits(virtual_clock: VirtualClock) -> None:
    pool = Pool()
    tasks = [pool.spawn(nap, 0.2) for _ in range(30)]
    assert not pool.full() and pool.free_count() == 1
    assert pool.join(timeout=3)
    assert virtual_clock.elapsed == pytest.approx(0.2)
    assert all(t.successful() for t in tasks)


def test_add_without_blocking_raises_pool_full_and_timeout_too() -> None:
    pool = Pool(1)
    release = Event()
    pool.spawn(release.wait)
    outsider = corun.Greenlet(lambda: None)
    with pytest.raises(PoolFull):
        pool.add(outsider, blocking=False)
    t0 = now()
    with pytest.raises(PoolFull):
        pool.add(outsider, timeout=0.05)
    assert now() - t0 >= 0.04
    assert outsider not in pool
    # The timed-out wait left no reservation behind.
    release.set()
    pool.join()
    assert pool.free_count() == 1
    pool.add(outsider)
    assert outsider in pool


def test_killed_waiter_does_not_leak_a_slot() -> None:
    pool = Pool(2)
    release = Event()
    pool.spawn(release.wait)
    pool.spawn(release.wait)
    waiter = spawn(pool.spawn, lambda: None)
    sleep(0.01)
    assert pool.statistics().waiting == 1
    waiter.kill()
    release.set()
    pool.join()
    assert pool.free_count() == 2 and pool.statistics().waiting == 0


def test_wait_available_waits_for_a_slot_without_taking_it() -> None:
    pool = Pool(1)
    pool.spawn(nap, 0.1)
    t0 = now()
    assert pool.wait_available(timeout=2) == 1
    assert now() - t0 >= 0.05
    assert pool.free_count() == 1 and len(pool) == 0


def test_wait_available_timeout_returns_zero() -> None:
    pool = Pool(1)
    pool.spawn(nap, 1.0)
    assert pool.wait_available(timeout=0.05) == 0
    pool.kill()


# -- membership -----------------------------------------------------------------


def test_members_leave_when_they_finish() -> None:
    group = Group()
    tasks = [group.spawn(nap, 0.01 * i) for i in range(3)]
    assert len(group) == 3
    assert all(t in group for t in tasks)
    assert list(group) == tasks
    assert group.greenlets == set(tasks)
    assert group.join()
    assert len(group) == 0 and not any(t in group for t in tasks)


def test_add_and_discard_outside_tasks() -> None:
    group = Group()
    g = spawn(nap, 0.05)
    group.add(group_member := g)
    assert group_member in group
    group.discard(g)
    assert g not in group
    assert group.join(timeout=0) is True  # empty: nothing to wait for
    g.join()
    h = spawn(nap, 0.01)
    group2 = Group([h])
    assert h in group2 and group2.join()


# -- join ---------------------------------------------------------------------------


def test_join_timeout_returns_false_while_members_run(hub: Hub) -> None:
    group = Group()
    group.spawn(nap, 5)
    t0 = now()
    assert group.join(timeout=0.05) is False
    assert 0.04 <= now() - t0 < 1.0
    assert len(group) == 1
    group.kill()
    assert group.join(timeout=0) is True


def test_join_raise_error_raises_the_first_failure_at_once() -> None:
    group = Group()

    def fails() -> None:
        sleep(0.01)
        raise ValueError("boom")

    slow = group.spawn(nap, 5)
    group.spawn(fails)
    t0 = now()
    with pytest.raises(ValueError, match="boom"):
        group.join(raise_error=True)
    assert now() - t0 < 1.0
    assert not slow.dead
    group.kill()


def test_join_without_raise_error_ignores_failures() -> None:
    group = Group()
    bad = group.spawn(lambda: 1 / 0)
    assert group.join() is True
    assert isinstance(bad.exception, ZeroDivisionError)


# -- kill -----------------------------------------------------------------------------


def test_kill_stops_every_member_and_runs_their_cleanup() -> None:
    pool = Pool(3)
    cleaned: list[int] = []

    def worker(i: int) -> None:
        try:
            sleep(5)
        finally:
            cleaned.append(i)

    tasks = [pool.spawn(worker, i) for i in range(3)]
    sleep(0)  # let them start and park
    t0 = now()
    pool.kill()
    assert now() - t0 < 1.0
    assert sorted(cleaned) == [0, 1, 2]
    assert all(t.dead and isinstance(t.value, GreenletExit) for t in tasks)
    assert len(pool) == 0 and pool.free_count() == 3


def test_kill_before_start_means_never_run() -> None:
    group = Group()
    ran: list[int] = []
    tasks = [group.spawn(ran.append, i) for i in range(3)]
    group.kill()
    assert len(group) == 0
    sleep(0.01)
    assert ran == [] and all(t.dead for t in tasks)


def test_kill_from_a_member_spares_the_caller() -> None:
    group = Group()
    others = [group.spawn(nap, 5) for _ in range(2)]

    def killer() -> str:
        group.kill()
        return "survived"

    k = group.spawn(killer)
    assert k.get() == "survived"
    assert all(o.dead for o in others)


def test_kill_with_timeout_gives_up_on_a_stubborn_member() -> None:
    group = Group()

    def stubborn() -> None:
        while True:
            try:
                sleep(5)
            except GreenletExit:
                pass

    g = group.spawn(stubborn)
    sleep(0)
    t0 = now()
    group.kill(timeout=0.1)
    assert 0.05 <= now() - t0 < 1.0
    assert not g.dead and g in group
    g.kill(ValueError, block=False)  # not GreenletExit: this one gets through
    g.join()
    assert isinstance(g.exception, ValueError)


def test_killone_only_kills_members() -> None:
    group = Group()
    member = group.spawn(nap, 5)
    outsider = spawn(nap, 0.01)
    group.killone(outsider)
    group.killone(member)
    assert member.dead and member not in group
    assert outsider.get() == 0.01


# -- apply ------------------------------------------------------------------------------


def test_apply_runs_in_a_member_and_returns_the_result() -> None:
    pool = Pool(2)
    seen: list[Any] = []

    def where(a: int, b: int = 0) -> int:
        seen.append(getcurrent() in pool)
        return a + b

    assert pool.apply(where, (1,), {"b": 2}) == 3
    assert seen == [True]
    with pytest.raises(ZeroDivisionError):
        pool.apply(lambda: 1 / 0)


def test_apply_from_a_member_calls_directly_instead_of_deadlocking() -> None:
    pool = Pool(1)

    def outer() -> tuple[int, bool]:
        me = getcurrent()
        # The only slot is ours: spawning would wait for ever.
        return pool.apply(lambda: (7, getcurrent() is me))

    assert pool.spawn(outer).get(timeout=2) == (7, True)


def test_apply_async_calls_back_with_the_result() -> None:
    pool = Pool(2)
    got: list[int] = []
    g = pool.apply_async(lambda x: x * 3, (5,), callback=got.append)
    assert g.get() == 15
    sleep(0.01)
    assert got == [15]


def test_apply_async_from_a_member_of_a_full_pool_does_not_wait() -> None:
    pool = Pool(1)

    def outer() -> int:
        inner = pool.apply_async(lambda: 42)
        return inner.get()

    assert pool.spawn(outer).get(timeout=2) == 42


def test_map_async_returns_a_task_with_the_list() -> None:
    pool = Pool(3)
    got: list[list[int]] = []
    g = pool.map_async(lambda x: x + 1, [1, 2, 3], callback=got.append)
    assert g not in pool
    assert g.get() == [2, 3, 4]
    sleep(0.01)
    assert got == [[2, 3, 4]]


# -- map family -------------------------------------------------------------------------


def test_map_keeps_input_order_and_runs_concurrently(virtual_clock: VirtualClock) -> None:
    pool = Pool(10)
    durations = [0.5 - 0.03 * i for i in range(10)]  # the last one asked finishes first
    assert pool.map(nap, durations) == durations
    assert virtual_clock.elapsed == pytest.approx(0.5)  # one by one ~3.7 s


def test_imap_yields_in_input_order_although_calls_finish_in_reverse(virtual_clock: VirtualClock) -> None:
    pool = Pool(4)
    finished: list[float] = []

    def job(d: float) -> float:
        sleep(d)
        finished.append(d)
        return d

    assert list(pool.imap(job, [0.2, 0.15, 0.1, 0.05])) == [0.2, 0.15, 0.1, 0.05]
    assert finished == [0.05, 0.1, 0.15, 0.2]


def test_imap_with_several_iterables_zips_them() -> None:
    assert list(Group().imap(lambda a, b: a * b, [1, 2, 3], [4, 5, 6, 7])) == [4, 10, 18]


def test_imap_unordered_yields_in_completion_order(virtual_clock: VirtualClock) -> None:
    pool = Pool(3)
    assert list(pool.imap_unordered(nap, [0.3, 0.1, 0.2])) == [0.1, 0.2, 0.3]
    assert virtual_clock.elapsed == pytest.approx(0.3)


def test_imap_is_lazy_and_bounded_by_pool_size() -> None:
    pool = Pool(3)
    pulled: list[int] = []
    gauge = Gauge()

    def source() -> Iterator[int]:
        for i in range(12):
            pulled.append(i)
            yield i

    def job(i: int) -> int:
        with gauge:
            sleep(0.02)
        return i

    it = pool.imap(job, source())
    sleep(0.01)
    assert pulled == []  # nothing happens before the consumer asks
    assert next(it) == 0
    # Each wake-up refills the free slots first: at most 3 running and 3
    # finished but not yet consumed.
    assert 3 <= len(pulled) <= 6
    assert list(it) == list(range(1, 12))
    assert gauge.most == 3


def test_imap_maxsize_bounds_calls_ahead_of_the_consumer() -> None:
    group = Group()
    gauge = Gauge()

    def job(i: int) -> int:
        with gauge:
            sleep(0.01)
        return i

    assert list(group.imap(job, range(10), maxsize=2)) == list(range(10))
    assert gauge.most == 2
    with pytest.raises(ValueError, match="maxsize"):
        group.imap(job, range(3), maxsize=0)


def test_failing_call_in_imap_raises_in_consumer_and_kills_the_rest() -> None:
    pool = Pool(4)
    cleaned: list[int] = []

    def job(i: int) -> int:
        try:
            if i == 0:
                sleep(0.01)
                raise ValueError(f"bad item {i}")
            sleep(5)
            return i
        finally:
            cleaned.append(i)

    t0 = now()
    with pytest.raises(ValueError, match="bad item 0"):
        list(pool.imap(job, range(4)))
    assert now() - t0 < 1.0
    assert sorted(cleaned) == [0, 1, 2, 3]
    assert len(pool) == 0


def test_failing_call_in_imap_unordered_raises_as_soon_as_it_fails() -> None:
    pool = Pool(4)
    results: list[int] = []

    def job(i: int) -> int:
        if i == 2:
            raise KeyError(i)
        sleep(5)
        return i

    t0 = now()
    with pytest.raises(KeyError):
        for r in pool.imap_unordered(job, range(4)):
            results.append(r)
    assert results == [] and now() - t0 < 1.0
    assert len(pool) == 0


def test_closing_imap_early_kills_the_calls_it_started() -> None:
    pool = Pool(3)
    entered: list[int] = []
    cleaned: list[int] = []

    def job(i: int) -> int:
        entered.append(i)
        try:
            sleep(0 if i == 0 else 5)
            return i
        finally:
            cleaned.append(i)

    it = pool.imap(job, range(10))
    t0 = now()
    assert next(it) == 0
    # The slot job 0 freed was refilled before its result was handed over.
    assert len(pool) == 3
    it.close()  # type: ignore[attr-defined]
    assert now() - t0 < 1.0
    assert len(pool) == 0 and pool.free_count() == 3
    # Every call that started was unwound; job 3 was killed before it ever
    # ran, and jobs 4..9 were never spawned.
    assert sorted(cleaned) == sorted(entered) == [0, 1, 2]
    sleep(0.01)
    assert sorted(entered) == [0, 1, 2]


def test_statistics_snapshot() -> None:
    pool = Pool(2)
    pool.spawn(nap, 0.05)
    stats = pool.statistics()
    assert (stats.size, stats.members, stats.free, stats.waiting) == (2, 1, 1, 0)
    with pytest.raises(AttributeError):
        stats.members = 5  # type: ignore[misc]
    pool.join()
    assert Group().statistics().size is None


def test_using_a_group_from_another_thread_raises() -> None:
    pool = Pool(2)
    pool.spawn(nap, 0.01)  # binds the pool to this thread's hub
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            pool.spawn(nap, 0.01)
        except BaseException as exc:
            errors.append(exc)
        finally:
            corun.get_hub().destroy()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "belongs to the hub of thread" in str(errors[0])
    assert pool.join(timeout=2) and pool.free_count() == 2
