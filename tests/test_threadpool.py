"""ThreadPool: real OS threads whose results come back to the hub without blocking it."""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import corun
from corun import _originals, sleep, spawn
from corun.event import AsyncResult
from corun.hub import Hub, get_hub
from corun.threadpool import ThreadJobLost, ThreadPool, get_threadpool

from .conftest import run_python

real_sleep = _originals.real_sleep


@pytest.fixture
def make_pool() -> Iterator[Callable[..., ThreadPool]]:
    """Pools made by a test are killed at its end, so no test leaves threads behind."""
    pools: list[ThreadPool] = []

    def make(maxsize: int, **kwargs: Any) -> ThreadPool:
        pool = ThreadPool(maxsize, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        assert pool.kill(timeout=5)


def python_threads() -> set[int]:
    """Idents of the threads that are running Python code now."""
    return set(sys._current_frames())


def os_thread_count() -> int:
    """Threads of this process as the OS sees them (0 where /proc cannot tell)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def settle(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    """Poll ``condition`` (an OS thread winding down is not an event we can wait on)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        real_sleep(0.005)
    return True


def signal_lock() -> Any:
    """A real lock, held: a worker releases it to say it got somewhere."""
    lock = _originals.allocate_lock()
    lock.acquire()
    return lock


def ident_after(seconds: float) -> int:
    real_sleep(seconds)
    return _originals.get_ident()


# -- construction -------------------------------------------------------------


@pytest.mark.parametrize("maxsize", [0, -3])
def test_maxsize_below_one_is_rejected_naming_the_argument(maxsize: int) -> None:
    with pytest.raises(ValueError, match="maxsize must be at least 1"):
        ThreadPool(maxsize)


def test_each_hub_has_a_default_pool_also_known_as_hub_threadpool(hub: Hub) -> None:
    pool = get_threadpool()
    assert isinstance(pool, ThreadPool) and pool is get_threadpool(hub) is hub.threadpool
    assert pool.maxsize == 10 and pool.size == 0  # threads start on demand
    assert corun.ThreadPool is ThreadPool
    others: list[Any] = []

    def other_thread() -> None:
        other = get_hub()
        others.extend([get_threadpool(), other.threadpool, get_threadpool().apply(lambda: 6 * 7)])
        other.destroy()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert others[0] is others[1] and others[0] is not pool and others[2] == 42


# -- results and errors ---------------------------------------------------------


def test_spawn_returns_an_async_result_with_the_value(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(2)
    result = pool.spawn(lambda a, b=0: (a + b, _originals.get_ident()), 2, b=3)
    assert isinstance(result, AsyncResult)
    value, ident = result.get(timeout=5)
    assert value == 5
    assert ident != _originals.get_ident()  # it ran in another thread


def test_apply_map_and_imap(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(3)
    assert pool.apply(divmod, (17, 5)) == (3, 2)
    assert pool.apply(int, ("ff",), {"base": 16}) == 255
    assert pool.map(lambda x: x * x, range(20)) == [x * x for x in range(20)]
    # Finishing in reverse order still yields in input order.
    delays = [0.2, 0.15, 0.1, 0.05, 0.0]
    assert list(pool.imap(lambda d: (real_sleep(d), d)[1], delays)) == delays
    assert list(pool.imap(pow, [2, 3], [5, 2])) == [32, 9]


def test_exception_in_the_job_reaches_the_caller_with_its_traceback(
    make_pool: Callable[..., ThreadPool], hub: Hub
) -> None:
    pool = make_pool(2)

    def broken_call() -> None:
        raise ValueError("bad input")

    result = pool.spawn(broken_call)
    with pytest.raises(ValueError, match="bad input") as info:
        result.get(timeout=5)
    assert "broken_call" in "".join(traceback.format_tb(info.value.__traceback__))
    assert isinstance(result.exception, ValueError) and not result.successful()
    with pytest.raises(ZeroDivisionError):
        pool.apply(lambda: 1 / 0)
    assert hub.pending == 0


def test_context_variables_reach_the_thread(make_pool: Callable[..., ThreadPool]) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    pool = make_pool(1)
    var.set("from the task")
    assert pool.apply(var.get) == "from the task"


# -- concurrency ------------------------------------------------------------------


def test_jobs_run_in_parallel_threads(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(10)
    t0 = time.monotonic()
    results = [pool.spawn(ident_after, 0.3) for _ in range(10)]
    idents = [r.get(timeout=5) for r in results]
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5  # one after another would take 3 s
    assert len(set(idents)) == 10
    assert pool.size == 10


def test_no_more_threads_than_maxsize(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(2)
    results = [pool.spawn(ident_after, 0.05) for _ in range(6)]
    assert pool.size == 2
    idents = {r.get(timeout=5) for r in results}
    assert len(idents) == 2
    assert pool.statistics().threads == 2


def test_apply_blocks_only_the_calling_task(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(1)
    ticks = [0]

    def ticker() -> None:
        while True:
            sleep(0.01)
            ticks[0] += 1

    t = spawn(ticker)
    t0 = time.monotonic()
    assert pool.apply(lambda: (real_sleep(0.3), "done")[1]) == "done"
    assert time.monotonic() - t0 >= 0.25
    t.kill()
    # A blocked hub would have ticked at most once; it ran about 30 times.
    assert ticks[0] >= 10


def test_waiting_alone_for_a_thread_is_not_a_deadlock(make_pool: Callable[..., ThreadPool], hub: Hub) -> None:
    pool = make_pool(1)
    result = pool.spawn(real_sleep, 0.2)
    assert hub.pending == 1
    # No other task, timer or fd: only the thread can wake this wait.
    assert result.get() is None
    assert hub.pending == 0


def test_pending_counts_jobs_in_flight(make_pool: Callable[..., ThreadPool], hub: Hub) -> None:
    pool = make_pool(2)
    results = [pool.spawn(real_sleep, 0.05) for _ in range(5)]
    assert hub.pending == 5 and len(pool) == 5
    assert pool.join(timeout=5)
    assert hub.pending == 0 and len(pool) == 0
    assert all(r.successful() for r in results)


def test_join_timeout_returns_false_while_a_job_runs(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(1)
    release = signal_lock()
    pool.spawn(release.acquire, True, 30)  # runs until this test releases it
    try:
        t0 = time.monotonic()
        assert pool.join(timeout=0.05) is False
        assert time.monotonic() - t0 < 2
    finally:
        release.release()
    assert pool.join(timeout=5) is True


# -- threads come and go ----------------------------------------------------------


def test_idle_workers_end_their_threads(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(2, idle_timeout=0.05)
    ident = pool.apply(_originals.get_ident)
    assert pool.size == 1
    assert settle(lambda: pool.size == 0)
    assert settle(lambda: ident not in python_threads())
    # And the pool starts a new one when there is work again.
    assert pool.apply(lambda: 7) == 7


def test_kill_leaves_no_worker_thread_alive(make_pool: Callable[..., ThreadPool], hub: Hub) -> None:
    before_threading = threading.active_count()
    before_os = os_thread_count()
    pool = make_pool(4)
    idents = {r.get(timeout=5) for r in [pool.spawn(ident_after, 0.1) for _ in range(4)]}
    assert len(idents) == 4 and idents <= python_threads()
    assert pool.kill() is True
    assert pool.size == 0
    assert settle(lambda: not idents & python_threads())
    # Not just out of Python code: the OS threads are gone too.  (``<=``: a
    # thread of an earlier test may have been winding down at the start.)
    assert settle(lambda: os_thread_count() <= before_os)
    assert threading.active_count() == before_threading
    assert hub.pending == 0


def test_kill_fails_unfinished_jobs_and_waits_for_busy_threads(
    make_pool: Callable[..., ThreadPool], hub: Hub
) -> None:
    pool = make_pool(1)
    ran: list[str] = []
    started = signal_lock()

    def first() -> None:
        started.release()
        real_sleep(0.3)
        ran.append("first")

    running = pool.spawn(first)
    queued = pool.spawn(ran.append, "second")
    assert started.acquire(True, 5)
    t0 = time.monotonic()
    assert pool.kill() is True
    assert time.monotonic() - t0 >= 0.15  # waited for the call to return
    with pytest.raises(ThreadJobLost, match="while it ran"):
        running.get(timeout=0)
    with pytest.raises(ThreadJobLost, match="before it started"):
        queued.get(timeout=0)
    assert ran == ["first"]  # the running call finished; the queued one never ran
    assert hub.pending == 0 and len(pool) == 0
    # A killed pool can take work again, with new threads.
    assert pool.apply(lambda: "again") == "again"


def test_kill_timeout_gives_up_on_a_long_call(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(1)
    started, release = signal_lock(), signal_lock()
    result = pool.spawn(lambda: (started.release(), release.acquire(True, 30)))
    try:
        assert started.acquire(True, 5)
        t0 = time.monotonic()
        assert pool.kill(timeout=0.05) is False
        assert time.monotonic() - t0 < 2  # gave up on the call, which goes on until released
        with pytest.raises(ThreadJobLost):
            result.get(timeout=0)
    finally:
        release.release()


def test_closing_imap_early_cancels_calls_not_started(make_pool: Callable[..., ThreadPool], hub: Hub) -> None:
    pool = make_pool(2)
    calls: list[int] = []

    def job(i: int) -> int:
        calls.append(i)
        real_sleep(0.05 if i == 0 else 0.3)
        return i

    it = pool.imap(job, range(20))  # 2 threads, up to 4 jobs submitted ahead
    assert next(it) == 0
    it.close()  # type: ignore[attr-defined]
    assert pool.join(timeout=5)
    # Job 1 was running and job 2 may have taken job 0's thread; job 3 was
    # submitted but still queued (no thread was free for 0.25 s more), and
    # was dropped.
    assert calls[0] == 0
    assert set(calls) <= {0, 1, 2}
    assert hub.pending == 0


# -- threads and hubs ---------------------------------------------------------------


def test_using_a_pool_from_another_thread_raises(make_pool: Callable[..., ThreadPool]) -> None:
    pool = make_pool(1)
    assert pool.apply(lambda: 1) == 1  # binds the pool to this thread's hub
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            pool.spawn(lambda: 2)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert f"belongs to the hub of thread {_originals.get_ident()}" in str(errors[0])
    assert len(pool) == 0


def test_spawn_after_the_hub_was_destroyed_raises() -> None:
    hub = get_hub()
    pool = ThreadPool(1, hub=hub)
    hub.destroy()
    with pytest.raises(RuntimeError, match="destroyed"):
        pool.spawn(lambda: 1)


def test_destroying_the_hub_kills_its_default_pool() -> None:
    hub = get_hub()
    pool = get_threadpool()
    ident = pool.apply(_originals.get_ident)
    assert ident in python_threads()
    hub.destroy()
    assert pool.size == 0
    assert settle(lambda: ident not in python_threads())
    with pytest.raises(RuntimeError, match="destroyed"):
        get_threadpool(hub)
    # The thread's next hub gets a pool of its own.
    assert get_threadpool() is not pool and get_threadpool().apply(lambda: 6 * 7) == 42


FORK_SCRIPT = """
import os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
import corun
from corun import _originals
from corun.threadpool import ThreadJobLost, ThreadPool

hub = corun.get_hub()
own = ThreadPool(2)
in_flight = [hub.threadpool.spawn(_originals.real_sleep, 0.5), own.spawn(_originals.real_sleep, 0.5)]
assert hub.pending == 2
pid = os.fork()
if pid == 0:
    status = 0
    try:
        for r in in_flight:
            try:
                r.get(timeout=2)
                print("child: result arrived", flush=True); status = 1
            except ThreadJobLost as exc:
                assert "forked" in str(exc), exc
        assert hub.pending == 0, hub.pending
        assert hub.threadpool.size == 0 and own.size == 0
        assert hub.threadpool.apply(lambda: 6 * 7) == 42
        assert own.apply(lambda: "own") == "own"
        print("child ok", flush=True)
    except BaseException as exc:
        print("child failed:", repr(exc), flush=True); status = 1
    finally:
        os._exit(status)
_, status = os.waitpid(pid, 0)
assert [r.get(timeout=5) for r in in_flight] == [None, None]
assert hub.pending == 0
own.kill()
print("parent ok, child exit", os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_loses_jobs_in_flight_and_starts_fresh() -> None:
    proc = run_python(FORK_SCRIPT, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "child ok" in proc.stdout, proc.stdout + proc.stderr
    assert "parent ok, child exit 0" in proc.stdout, proc.stdout + proc.stderr


def test_destroying_a_hub_kills_every_pool_bound_to_it() -> None:
    hub = get_hub()
    extra = ThreadPool(2)
    release = _originals.allocate_lock()
    release.acquire()
    started = _originals.allocate_lock()
    started.acquire()

    def blocked() -> str:
        started.release()
        release.acquire()
        return "finished"

    result = extra.spawn(blocked)
    started.acquire()  # the worker thread is inside the call
    release.release()  # let it end soon, after the hub is gone
    hub.destroy()
    # The job could not be delivered to a destroyed hub: it was declared lost.
    assert isinstance(result.exception, ThreadJobLost)
    assert extra.statistics().threads == 0
