"""Queue, LifoQueue, PriorityQueue, JoinableQueue, Channel: semantics, hand-off, cancellation."""

from __future__ import annotations

import queue as std_queue
import threading
from collections.abc import Callable
from typing import Any

import pytest

import corun
from corun import LoopExit, Timeout, joinall, sleep, spawn
from corun.queue import (
    Channel,
    ChannelStatistics,
    Empty,
    Full,
    JoinableQueue,
    LifoQueue,
    PriorityQueue,
    Queue,
    QueueStatistics,
)
from corun.testing import run_in_thread

from .conftest import expects_loop_exit, now

# -- basics -----------------------------------------------------------------------


pytestmark = pytest.mark.corun(clock="virtual")


def test_empty_and_full_are_the_stdlib_exceptions() -> None:
    assert Empty is std_queue.Empty
    assert Full is std_queue.Full
    with pytest.raises(std_queue.Empty):
        Queue().get_nowait()
    with pytest.raises(std_queue.Full):
        Queue(1, items=[1]).put_nowait(2)


def test_fifo_order_and_sizes() -> None:
    q: Queue[int] = Queue(3)
    assert q.empty() and not q.full() and q.qsize() == 0 and q.maxsize == 3
    for i in range(3):
        q.put(i)
    assert q.full() and q.qsize() == 3 and len(q) == 3
    assert q.peek() == 0 and q.peek_nowait() == 0
    assert [q.get(), q.get_nowait(), q.get()] == [0, 1, 2]
    assert q.empty()
    assert bool(q) is True  # an empty queue is still a true object


@pytest.mark.parametrize("maxsize", [None, 0, -1])
def test_maxsize_none_or_not_positive_is_unbounded(maxsize: int | None) -> None:
    q: Queue[int] = Queue(maxsize)
    assert q.maxsize is None
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 1000


def test_lifo_and_priority_order() -> None:
    lq: LifoQueue[int] = LifoQueue()
    for i in range(3):
        lq.put(i)
    assert lq.peek() == 2
    assert [lq.get() for _ in range(3)] == [2, 1, 0]
    pq: PriorityQueue[tuple[int, str]] = PriorityQueue(items=[(3, "c"), (1, "a")])
    pq.put((2, "b"))
    assert pq.peek() == (1, "a")
    assert [pq.get() for _ in range(3)] == [(1, "a"), (2, "b"), (3, "c")]


def test_generic_subscription_works_at_run_time() -> None:
    for cls in (Queue, LifoQueue, PriorityQueue, JoinableQueue, Channel):
        alias = cls[int]  # type: ignore[index]
        obj = alias()
        assert type(obj) is cls
    assert issubclass(JoinableQueue, Queue)
    assert JoinableQueue.__name__ == "JoinableQueue"


def test_negative_timeout_is_an_error() -> None:
    q: Queue[int] = Queue(1)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    q.put(1)
    with pytest.raises(ValueError):
        q.put(2, timeout=-1)
    with pytest.raises(Full):
        q.put(2, timeout=0)
    assert q.get(timeout=0) == 1
    with pytest.raises(Empty):
        q.get(timeout=0)


def test_statistics_snapshot() -> None:
    q: Queue[str] = Queue(2)
    q.put("a")
    assert q.statistics() == QueueStatistics(
        qsize=1, maxsize=2, unfinished_tasks=1, getters=0, putters=0, joiners=0
    )
    assert q.statistics().waiters == 0


# -- waiting getters ----------------------------------------------------------------


def test_getters_are_served_fifo_by_direct_hand_off() -> None:
    q: Queue[int] = Queue()
    tasks = [spawn(q.get) for _ in range(4)]
    sleep(0)
    assert q.statistics().getters == 4
    for i in range(4):
        q.put(i)
    # Every item went straight to a waiting getter; nothing was stored.
    assert q.qsize() == 0
    with pytest.raises(Empty):
        q.get_nowait()
    joinall(tasks)
    assert [t.value for t in tasks] == [0, 1, 2, 3]
    assert q.statistics().getters == 0


def test_get_timeout_raises_empty_and_leaves_no_getter() -> None:
    q: Queue[int] = Queue()
    start = now()
    with pytest.raises(Empty):
        q.get(timeout=0.05)
    assert now() - start >= 0.04
    assert q.statistics().waiters == 0
    q.put(1)
    assert q.qsize() == 1  # not handed to the departed getter


def test_get_under_timeout_block_leaves_no_getter() -> None:
    q: Queue[int] = Queue()
    with pytest.raises(Timeout):
        with Timeout(0.02):
            q.get()
    assert q.statistics().waiters == 0


def test_kill_blocked_getter_runs_finally_and_leaves_no_getter() -> None:
    q: Queue[int] = Queue()
    cleaned = []

    def consumer() -> None:
        try:
            q.get()
        finally:
            cleaned.append(True)

    g = spawn(consumer)
    sleep(0)
    assert q.statistics().getters == 1
    g.kill()
    assert cleaned == [True]
    assert q.statistics().waiters == 0
    q.put(7)
    assert q.get_nowait() == 7


@pytest.mark.parametrize("exception", [corun.GreenletExit(), Timeout(1)], ids=["kill", "timeout"])
def test_item_granted_then_getter_cancelled_goes_to_next_getter(exception: BaseException) -> None:
    q: Queue[str] = Queue()
    a = spawn(q.get)
    b = spawn(q.get)
    sleep(0)
    a.kill(exception, block=False)  # queued before the hand-off below
    q.put("x")
    joinall([a, b])
    assert a.dead and a.value != "x"
    assert b.value == "x"
    assert q.statistics() == QueueStatistics(0, None, 1, 0, 0, 0)


def test_item_granted_then_getter_cancelled_goes_back_to_the_front() -> None:
    q: Queue[str] = Queue()
    a = spawn(q.get)
    sleep(0)
    a.kill(block=False)
    q.put("x")  # handed to a, which will never take it
    q.put("y")  # nobody waits any more: stored
    a.join()
    assert [q.get_nowait(), q.get_nowait()] == ["x", "y"]


def test_lifo_item_given_back_is_the_next_one_out() -> None:
    q: LifoQueue[str] = LifoQueue()
    a = spawn(q.get)
    sleep(0)
    a.kill(block=False)
    q.put("x")
    q.put("y")
    a.join()
    assert q.get_nowait() == "x"


@pytest.mark.corun(clock="real")  # a clock moved by hand replaces the hub's
def test_getter_own_timeout_after_grant_keeps_the_item(fake_clock: list[float]) -> None:
    q: Queue[str] = Queue()
    outcome: list[str] = []

    def consumer() -> None:
        try:
            outcome.append(q.get(timeout=5))
        except Empty:
            outcome.append("empty")

    g = spawn(consumer)
    sleep(0)
    fake_clock[0] += 10  # the getter's deadline passed; its timer fires this pass
    q.put("x")  # handed over, but the getter wakes with its timeout first
    g.join()
    assert outcome == ["empty"]
    assert q.get_nowait() == "x"
    assert q.statistics().waiters == 0


@expects_loop_exit
def test_loopexit_when_get_can_never_be_satisfied() -> None:
    q: Queue[int] = Queue()
    with pytest.raises(LoopExit):
        q.get()
    assert q.statistics().waiters == 0


def test_peek_waits_without_taking() -> None:
    q: Queue[str] = Queue()
    peeker = spawn(q.peek)
    getter = spawn(q.get)
    sleep(0)
    q.put("x")
    joinall([peeker, getter])
    # The peeker was first in line: it saw the item and passed it on to the getter.
    assert peeker.value == "x" and getter.value == "x"
    assert q.empty()
    with pytest.raises(Empty):
        q.peek(timeout=0.01)
    assert q.statistics().waiters == 0


# -- waiting putters ----------------------------------------------------------------


def test_putters_wait_while_full_and_are_admitted_fifo() -> None:
    q: Queue[str] = Queue(1)
    q.put("first")
    putters = [spawn(q.put, name) for name in ("a", "b", "c")]
    sleep(0)
    assert q.statistics().putters == 3
    assert q.get() == "first"
    # The freed slot went to a's item at once: no later put can overtake it.
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait("late")
    assert [q.get(), q.get(), q.get()] == ["a", "b", "c"]
    joinall(putters)
    assert all(p.successful() for p in putters)
    assert q.statistics().waiters == 0


def test_put_timeout_raises_full_and_does_not_add_the_item() -> None:
    q: Queue[int] = Queue(1, items=[0])
    with pytest.raises(Full):
        q.put(1, timeout=0.03)
    assert q.statistics().putters == 0
    assert q.get() == 0
    assert q.empty()


def test_kill_blocked_putter_leaves_no_putter_and_no_item() -> None:
    q: Queue[int] = Queue(1, items=[0])
    cleaned = []

    def producer() -> None:
        try:
            q.put(1)
        finally:
            cleaned.append(True)

    g = spawn(producer)
    sleep(0)
    g.kill()
    assert cleaned == [True]
    assert q.statistics().waiters == 0
    assert q.get() == 0
    assert q.empty()


@pytest.mark.corun(clock="real")  # a clock moved by hand replaces the hub's
def test_putter_admitted_then_timed_out_still_succeeded(fake_clock: list[float]) -> None:
    q: Queue[str] = Queue(1, items=["old"])
    g = spawn(q.put, "new", True, 5)
    sleep(0)
    fake_clock[0] += 10
    assert q.get() == "old"  # admits "new"; the putter's timer fires before it runs
    g.join()
    assert g.successful()  # the put happened, so it must not claim Full
    assert q.get_nowait() == "new"


def test_putter_admitted_then_killed_keeps_item_in_queue() -> None:
    q: Queue[str] = Queue(1, items=["old"])
    g = spawn(q.put, "new")
    sleep(0)
    g.kill(block=False)
    assert q.get() == "old"
    g.join()
    assert q.statistics().putters == 0
    assert q.get_nowait() == "new"


def test_raising_maxsize_admits_putters() -> None:
    q: Queue[int] = Queue(1, items=[0])
    g = spawn(q.put, 1)
    sleep(0)
    q.maxsize = 2
    g.join()
    assert q.qsize() == 2


@expects_loop_exit
def test_loopexit_when_put_can_never_be_satisfied() -> None:
    q: Queue[int] = Queue(1, items=[0])
    with pytest.raises(LoopExit):
        q.put(1)
    assert q.statistics().waiters == 0
    assert q.qsize() == 1


# -- task_done / join ---------------------------------------------------------------


def test_join_waits_for_task_done() -> None:
    q: JoinableQueue[int] = JoinableQueue()
    assert q.join() is True
    for i in range(3):
        q.put(i)
    assert q.join(timeout=0.01) is False
    assert q.statistics().joiners == 0
    joiner = spawn(q.join)
    sleep(0)
    for _ in range(3):
        q.get()
        q.task_done()
    joiner.join()
    assert joiner.value is True
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_iteration_stops_at_stopiteration() -> None:
    q: Queue[Any] = Queue()
    for item in (1, 2, StopIteration, 3):
        q.put(item)
    assert list(q) == [1, 2]
    assert q.get_nowait() == 3


def test_producers_and_consumers() -> None:
    q: Queue[Any] = Queue(4)
    received: list[int] = []
    most = 0

    def producer(base: int) -> None:
        for i in range(100):
            q.put(base + i)

    def consumer() -> None:
        nonlocal most
        for item in q:
            most = max(most, q.qsize())
            received.append(item)
            q.task_done()
        q.task_done()  # the StopIteration marker

    consumers = [spawn(consumer) for _ in range(3)]
    producers = [spawn(producer, 1000 * p) for p in range(5)]
    joinall(producers)
    for _ in consumers:
        q.put(StopIteration)
    joinall(consumers)
    assert q.join(timeout=1)
    assert sorted(received) == sorted(1000 * p + i for p in range(5) for i in range(100))
    assert most <= 4
    assert q.statistics() == QueueStatistics(0, 4, 0, 0, 0, 0)


# -- Channel ------------------------------------------------------------------------


def test_channel_put_waits_for_a_getter() -> None:
    ch: Channel[str] = Channel()
    log: list[str] = []

    def producer() -> None:
        ch.put("x")
        log.append("put returned")

    p = spawn(producer)
    sleep(0)
    assert log == [] and ch.statistics() == ChannelStatistics(getters=0, putters=1)
    assert ch.balance == 1
    assert ch.get() == "x"
    p.join()
    assert log == ["put returned"]
    assert ch.qsize() == 0 and ch.empty() and ch.full()


def test_channel_nowait_needs_the_other_side() -> None:
    ch: Channel[int] = Channel()
    with pytest.raises(Full):
        ch.put_nowait(1)
    with pytest.raises(Empty):
        ch.get_nowait()
    g = spawn(ch.get)
    sleep(0)
    ch.put_nowait(5)
    assert g.get() == 5
    with pytest.raises(ValueError):
        Channel(2)


@expects_loop_exit
def test_channel_timeouts_leave_nothing_behind() -> None:
    ch: Channel[int] = Channel()
    with pytest.raises(Full):
        ch.put(1, timeout=0.02)
    with pytest.raises(Empty):
        ch.get(timeout=0.02)
    assert ch.statistics().waiters == 0
    with pytest.raises(LoopExit):
        ch.get()
    assert ch.statistics().waiters == 0


def test_channel_getters_fifo_and_cancelled_getter_passes_item_on() -> None:
    ch: Channel[str] = Channel()
    a, b, c = (spawn(ch.get) for _ in range(3))
    sleep(0)
    a.kill(block=False)
    ch.put("x")  # granted to a, which will never take it
    ch.put("y")  # granted to b, the first getter still in line
    joinall([a, b, c])
    # a's cancellation passed "x" on to the next getter in line.
    assert (b.value, c.value) == ("y", "x")
    assert ch.statistics().waiters == 0


def test_channel_item_of_cancelled_getter_is_not_lost() -> None:
    ch: Channel[str] = Channel()
    a = spawn(ch.get)
    sleep(0)
    a.kill(block=False)
    ch.put("x")
    a.join()
    assert ch.qsize() == 1
    assert ch.get_nowait() == "x"


def test_channel_iteration() -> None:
    ch: Channel[Any] = Channel()

    def producer() -> None:
        for i in range(3):
            ch.put(i)
        ch.put(StopIteration)

    spawn(producer)
    assert list(ch) == [0, 1, 2]


# -- threads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [lambda q: q.put(1), lambda q: q.get(timeout=1), lambda q: q.peek(timeout=1)],
    ids=["put-to-getter", "get", "peek"],
)
def test_queue_use_from_another_thread_raises(action: Callable[[Queue[int]], Any]) -> None:
    q: Queue[int] = Queue()
    getter = spawn(q.get)  # binds the queue to this thread's hub
    sleep(0)
    exc = run_in_thread(lambda: action(q))
    assert isinstance(exc, RuntimeError), exc
    assert f"thread {threading.get_ident()}" in str(exc)
    assert q.statistics().getters == 1 and q.qsize() == 0
    getter.kill()


def test_channel_use_from_another_thread_raises() -> None:
    ch: Channel[int] = Channel()
    putter = spawn(ch.put, 1)
    sleep(0)
    exc = run_in_thread(ch.get_nowait)
    assert isinstance(exc, RuntimeError), exc
    assert ch.statistics().putters == 1
    putter.kill()
