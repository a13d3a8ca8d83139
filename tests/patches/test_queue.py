"""The cooperative ``queue.SimpleQueue``: a getter parks its task; puts never block."""

from __future__ import annotations

import queue
import time

import corun.patches.queue as coqueue
import pytest

import corun
from corun import _originals

from ..conftest import run_patched, run_python


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


def test_queue_put_and_get_keep_the_stdlib_semantics_on_their_short_path() -> None:
    proc = run_patched(
        """
        import collections, heapq, queue, sys, threading
        import corun
        print(queue.Queue.put.__module__, queue.Queue.get.__module__)

        # Order of each kind, sizes, the empty and full cases, task_done/join.
        for kind in (queue.Queue, queue.LifoQueue, queue.PriorityQueue):
            q = kind(2)
            q.put(3); q.put_nowait(1)
            try:
                q.put_nowait(2)
            except queue.Full:
                full = True
            out = [q.get(), q.get_nowait()]
            try:
                q.get(block=False)
            except queue.Empty:
                empty = True
            q.task_done(); q.task_done(); q.join()
            print(kind.__name__, out, full, empty, q.qsize(), q.unfinished_tasks)

        # Getters that wait are served in arrival order, across threads.
        q = queue.Queue()
        got = {}
        def getter(i):
            got[i] = q.get()
        threads = [threading.Thread(target=getter, args=(i,)) for i in range(3)]
        for t in threads: t.start()
        corun.sleep(0.05)
        for item in "abc": q.put(item)
        for t in threads: t.join()
        print(sorted(got.items()))

        # A producer blocked on a full queue resumes as space frees, in order.
        q = queue.Queue(1)
        def produce():
            for i in range(5): q.put(i)
        t = threading.Thread(target=produce); t.start()
        print([q.get() for _ in range(5)]); t.join()

        # A subclass's storage hooks are the ones used.
        class Counting(queue.Queue):
            calls = collections.Counter()
            def _qsize(self): self.calls["qsize"] += 1; return len(self.queue)
            def _put(self, item): self.calls["put"] += 1; self.queue.append(item * 2)
            def _get(self): self.calls["get"] += 1; return self.queue.popleft()
        c = Counting()
        waiter = corun.spawn(c.get)
        corun.sleep(0.01)
        c.put(21)
        print(waiter.get(), c.calls["put"], c.calls["get"], c.calls["qsize"] > 0)
        # One hook of the stdlib's three replaced: that one is used, the other two inherited.
        class Doubling(queue.LifoQueue):
            def _put(self, item): self.queue.append(item * 2)
        class Reversing(queue.PriorityQueue):
            def _get(self): return -heapq.heappop(self.queue)
        d, r = Doubling(), Reversing()
        d.put(1); d.put(2); r.put(3); r.put(1)
        print(d.get(), d.get(), r.get(), r.get())

        # The stdlib's hooks on a storage of the subclass's own (its _init): they run on it.
        class Box:
            def __init__(self): self.items = []
            def append(self, item): self.items.append(item)
            def popleft(self): return self.items.pop(0)
            def __len__(self): return len(self.items)
        class Boxed(queue.Queue):
            def _init(self, maxsize): self.queue = Box()
        b = Boxed()
        waiter = corun.spawn(b.get)
        corun.sleep(0.01)
        b.put("x"); b.put("y")
        print(waiter.get(timeout=2), b.get(), b.qsize())

        # Storage swapped under the mutex while a getter waits: it reads the new one.
        q = queue.Queue()
        waiter = corun.spawn(q.get)
        corun.sleep(0.01)
        with q.mutex:
            q.queue = collections.deque()
        q.put("fresh")
        print(waiter.get(timeout=2))

        # Timed waits are the stdlib's own, on the cooperative lock.
        try:
            queue.Queue().get(timeout=0.05)
        except queue.Empty:
            print("timed out")
        if sys.version_info >= (3, 13):
            q = queue.Queue()
            waiter = corun.spawn(q.get)
            corun.sleep(0.01)
            q.shutdown()
            waiter.join(2)
            print(type(waiter.exception).__name__)
        else:
            print("ShutDown")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "corun.patches.queue corun.patches.queue",
        "Queue [3, 1] True True 0 0",
        "LifoQueue [1, 3] True True 0 0",
        "PriorityQueue [1, 3] True True 0 0",
        "[(0, 'a'), (1, 'b'), (2, 'c')]",
        "[0, 1, 2, 3, 4]",
        "42 1 1 True",
        "4 2 -1 -3",
        "x y 0",
        "fresh",
        "timed out",
        "ShutDown",
    ]


def test_a_getter_killed_while_waiting_leaves_the_queue_free_for_the_next() -> None:
    proc = run_patched(
        """
        import queue
        import corun
        q = queue.Queue()
        first = corun.spawn(q.get)
        second = corun.spawn(q.get)
        corun.sleep(0.01)
        first.kill()
        print(q.mutex.locked(), len(q.not_empty._waiters))
        q.put("item")
        print(second.get(timeout=2), q.qsize(), q.mutex.locked())
        # A kill queued after the put's wake-up comes too late: the getter has its item.
        third = corun.spawn(q.get)
        fourth = corun.spawn(q.get)
        corun.sleep(0.01)
        q.put("again")
        third.kill(block=False)
        third.join(2)
        q.put("last")
        print(third.value, fourth.get(timeout=2), q.qsize(), q.mutex.locked())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["False 1", "item 0 False", "again last 0 False"]


def test_a_queue_made_before_patching_keeps_working() -> None:
    proc = run_python(
        """
        import queue
        early = queue.Queue()
        import corun.monkey
        corun.monkey.patch_all()
        import threading
        threading.Thread(target=early.put, args=("x",)).start()
        print(early.get(timeout=5), type(early.mutex).__module__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["x", "_thread"]


def test_a_getter_killed_after_a_put_handed_it_the_mutex_passes_the_mutex_on() -> None:
    proc = run_patched(
        """
        import queue
        import corun
        q = queue.Queue()
        getter = corun.spawn(q.get)
        corun.sleep(0.01)
        getter.kill(block=False)  # delivered before the put's wake-up
        q.put("item")  # hands the mutex to the parked getter
        getter.join(2)
        print(type(getter.exception).__name__, getter.dead, q.mutex.locked(), q.qsize())
        print(q.get(timeout=2), q.mutex.locked(), len(q.not_empty._waiters))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["NoneType True False 1", "item False 0"]
