"""The cooperative ``queue.SimpleQueue``: a getter parks its task; puts never block."""

from __future__ import annotations

import queue
import time

import corun.patches.queue as coqueue
import pytest

import corun
from corun import _originals

from ..conftest import run_patched


def test_contract() -> None:
    assert coqueue.__target__ == "queue"
    assert coqueue.__implements__ == ["SimpleQueue"]
    assert str(coqueue.SimpleQueue[int]) == "corun.patches.queue.SimpleQueue[int]"


def test_fifo_and_the_empty_cases() -> None:
    q = coqueue.SimpleQueue()
    assert q.empty() and q.qsize() == 0
    for i in range(3):
        q.put_nowait(i)
    assert q.qsize() == 3 and not q.empty()
    assert [q.get(), q.get_nowait(), q.get(block=False)] == [0, 1, 2]
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    assert time.monotonic() - start >= 0.04


def test_a_getter_parks_only_its_task() -> None:
    q = coqueue.SimpleQueue()
    got: list[object] = []
    getters = [corun.spawn(lambda: got.append(q.get())) for _ in range(3)]
    corun.sleep(0.01)
    assert got == []  # all three parked, and this task still runs
    for item in "abc":
        q.put(item)
    corun.joinall(getters, raise_error=True)
    assert got == ["a", "b", "c"]


def test_a_killed_getter_loses_no_item() -> None:
    q = coqueue.SimpleQueue()
    first = corun.spawn(q.get)
    second = corun.spawn(q.get)
    corun.sleep(0.01)
    first.kill(block=False)  # queued before the put's wake-up of `first`
    q.put("item")
    corun.joinall([first, second], timeout=2)
    assert second.value == "item"


def test_put_from_a_real_os_thread_wakes_the_task() -> None:
    q = coqueue.SimpleQueue()

    def producer() -> None:
        for i in range(5):
            _originals.real_sleep(0.02)
            q.put(i)

    _originals.start_new_thread(producer, ())
    assert [q.get(timeout=5) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_thread_pool_executor_under_patch_all() -> None:
    proc = run_patched(
        """
        import queue, time
        from concurrent.futures import ThreadPoolExecutor
        assert queue.SimpleQueue.__module__ == "corun.patches.queue"
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda i: (time.sleep(0.3), i * i)[1], range(20)))
        print(results == [i * i for i in range(20)], time.monotonic() - start < 1.5)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_a_get_that_could_wait_is_a_switch_point() -> None:
    # A worker fed only by its own puts never finds the queue empty; the
    # other tasks must still get turns, as they would between OS threads.
    q = coqueue.SimpleQueue()
    ticks = [0]

    def ticker() -> None:
        while True:
            ticks[0] += 1
            corun.sleep(0)

    task = corun.spawn(ticker)
    q.put(0)
    for _ in range(50):
        q.put(q.get())
    assert ticks[0] >= 25
    before = ticks[0]
    for _ in range(50):
        q.put(q.get_nowait())  # a non-blocking get is not a switch point
    assert ticks[0] == before
    task.kill()


def test_a_fresh_import_of_the_c_module_gets_the_cooperative_queue() -> None:
    proc = run_patched(
        """
        from test.support.import_helper import import_fresh_module
        import threading, time
        fresh = import_fresh_module("queue", fresh=["_queue"])
        q = fresh.SimpleQueue()
        threading.Timer(0.2, q.put, ("late",)).start()
        start = time.monotonic()
        print(type(q).__module__, q.get(timeout=5), time.monotonic() - start < 3)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["corun.patches.queue", "late", "True"]


def test_the_python_queues_stay_generic_and_cooperative_under_patch_all() -> None:
    proc = run_patched(
        """
        import queue, threading, time
        print(queue.Queue[int], queue.SimpleQueue[str])
        q = queue.Queue(1)
        threading.Timer(0.2, q.put, ("late",)).start()
        start = time.monotonic()
        print(q.get(timeout=5), time.monotonic() - start < 3)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "queue.Queue[int] corun.patches.queue.SimpleQueue[str]",
        "late True",
    ]
