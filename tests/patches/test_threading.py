"""The cooperative ``threading`` twin: a notified waiter gets the lock in its turn."""

from __future__ import annotations

import json
import time

import corun.patches.thread as cothread
import corun.patches.threading as cothreading

import corun

from ..conftest import run_patched, run_python


def test_a_notified_task_gets_the_lock_before_a_task_that_never_waited() -> None:
    cond = cothreading.Condition(cothread.allocate_lock())
    log: list[str] = []

    def waiter() -> None:
        with cond:
            log.append("waiting")
            assert cond.wait(timeout=10) is True
            log.append("notified waiter has the lock")

    def barger() -> None:
        # Asks for the lock once the notifier released it, before the
        # notified waiter has run: with the stdlib's Condition it would win.
        with cond:
            log.append("barger has the lock")

    w = corun.spawn(waiter)
    corun.sleep(0)
    with cond:
        cond.notify()
        b = corun.spawn(barger)
    corun.joinall([w, b], timeout=5, raise_error=True)
    assert log == ["waiting", "notified waiter has the lock", "barger has the lock"]
    assert not cond._lock.locked()


def test_a_notified_waiter_keeps_waiting_for_the_lock_past_its_timeout() -> None:
    cond = cothreading.Condition(cothread.RLock())  # taken twice: the depth comes back
    results: list[object] = []

    def waiter() -> None:
        with cond, cond:
            start = time.monotonic()
            results.append(cond.wait(timeout=0.05))
            results.append(time.monotonic() - start)
            results.append(cond._lock._recursion_count())

    w = corun.spawn(waiter)
    corun.sleep(0)
    with cond:
        cond.notify()
        corun.sleep(0.3)  # holds the lock well past the waiter's deadline
    w.join(timeout=5)
    notified, waited, depth = results
    assert notified is True  # notified before the deadline: not a timeout
    assert waited >= 0.25  # it had to wait for the lock, with no deadline
    assert depth == 2
    assert not cond._lock.locked()


def test_timed_out_waiters_take_the_lock_back_and_leave_no_trace() -> None:
    cond = cothreading.Condition(cothread.allocate_lock())
    results: list[bool] = []

    def waiter() -> None:
        with cond:
            results.append(cond.wait(timeout=0.05))
            results.append(cond._lock.locked())

    tasks = [corun.spawn(waiter) for _ in range(3)]
    corun.joinall(tasks, timeout=5, raise_error=True)
    assert results == [False, True] * 3
    assert len(cond._waiters) == 0
    with cond:
        cond.notify_all()  # nobody waits: nothing happens
    assert repr(cond).endswith(", 0)>")


def test_a_killed_waiter_handed_the_lock_passes_it_on_and_takes_it_back() -> None:
    cond = cothreading.Condition(cothread.allocate_lock())
    log: list[str] = []

    def waiter() -> None:
        with cond:
            try:
                cond.wait()
            except corun.GreenletExit:
                # As with the stdlib's Condition, the lock is held again here.
                log.append(f"killed, lock held: {cond._lock.locked()}")
                raise

    def second() -> None:
        with cond:
            log.append("second has the lock")

    w = corun.spawn(waiter)
    corun.sleep(0)
    with cond:
        cond.notify()  # moves the waiter into the lock's line
        s = corun.spawn(second)
        corun.sleep(0)  # the second task gets in line behind it
        w.kill(block=False)
    # The release handed the lock to the waiter, which is leaving: it passes
    # the lock on to the second task, then takes it back on its way out.
    corun.joinall([w, s], timeout=5)
    assert log == ["second has the lock", "killed, lock held: True"]
    assert w.dead and s.dead
    assert not cond._lock.locked()


def test_notify_wakes_a_waiter_on_another_os_thread() -> None:
    cond = cothreading.Condition(cothread.allocate_lock())
    started = cothread.allocate_lock()
    started.acquire()
    out: list[bool] = []

    def os_thread() -> None:
        with cond:
            started.release()
            out.append(cond.wait(timeout=10))
        corun.get_hub().destroy()

    corun._originals.start_new_thread(os_thread, ())
    started.acquire(True, 10)  # the thread is in its wait: it released the lock
    with cond:
        cond.notify()
    deadline = time.monotonic() + 10
    while not out and time.monotonic() < deadline:
        corun.sleep(0.01)
    assert out == [True]
    assert not cond._lock.locked()


def test_three_consumer_threads_on_a_bounded_queue_each_get_a_share() -> None:
    # Producers put several items each and the consumers never block while
    # items are there: once woken, a consumer must get its turn before the
    # others take every item again.
    proc = run_patched(
        """
        import json, queue, threading
        q = queue.Queue(maxsize=10)
        counts = [0, 0, 0]

        def produce(p):
            for i in range(5):
                q.put((p, i))

        def consume(c):
            while q.get() is not None:
                counts[c] += 1

        consumers = [threading.Thread(target=consume, args=(c,)) for c in range(3)]
        producers = [threading.Thread(target=produce, args=(p,)) for p in range(200)]
        for t in consumers + producers:
            t.start()
        for t in producers:
            t.join()
        for _ in consumers:
            q.put(None)
        for t in consumers:
            t.join()
        print(json.dumps(counts))
        """
    )
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.splitlines()[-1])
    assert sum(counts) == 1000
    assert min(counts) >= 200, counts  # a fair share is about 333 each


def test_condition_is_the_patched_class_and_says_it_is_threadings() -> None:
    proc = run_patched(
        """
        import queue, threading
        q = queue.Queue()
        print(threading.Condition.__module__, type(q.not_empty) is threading.Condition,
              isinstance(threading.Condition(), threading.Condition))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["threading", "True", "True"]


def test_event_set_clear_wait_keep_the_stdlib_semantics_on_their_short_path() -> None:
    proc = run_patched(
        """
        import threading, time
        import corun
        print(*(getattr(threading.Event, name).__module__ for name in ('wait', 'set', 'clear')))
        e = threading.Event()
        start = time.monotonic()
        print(e.wait(0.05), e.wait(0), e.wait(-1), time.monotonic() - start >= 0.04)

        # Ping-pong between two threads, and every waiter woken by one set.
        ping, pong = threading.Event(), threading.Event()
        rounds = []
        def ponger():
            for i in range(100):
                ping.wait(); ping.clear(); rounds.append(i); pong.set()
        t = threading.Thread(target=ponger); t.start()
        for _ in range(100):
            ping.set(); pong.wait(); pong.clear()
        t.join()
        print(len(rounds), ping.is_set(), pong.is_set())
        woken = []
        waiters = [threading.Thread(target=lambda: woken.append(e.wait())) for _ in range(3)]
        for w in waiters: w.start()
        corun.sleep(0.01)
        e.set()
        for w in waiters: w.join()
        print(woken, e.wait(), e.is_set())

        # A waiter killed while waiting leaves the event's lock free.
        e = threading.Event()
        task = corun.spawn(e.wait)
        corun.sleep(0.01)
        task.kill()
        print(e._cond._lock.locked(), len(e._cond._waiters))

        # A subclass, and an event whose lock is held elsewhere, take the stdlib's way.
        class Noisy(threading.Event):
            def set(self):
                print("set called"); super().set()
        n = Noisy()
        corun.spawn_later(0.01, n.set)
        print(n.wait(2))
        e = threading.Event()
        e._cond._lock.acquire()
        setter = corun.spawn(e.set)
        corun.sleep(0.01)
        print(e.is_set())
        e._cond._lock.release()
        setter.join(2)
        print(e.is_set())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "corun.patches.threading corun.patches.threading corun.patches.threading",
        "False False False True",
        "100 False False",
        "[True, True, True] True True",
        "False 0",
        "set called",
        "True",
        "False",
        "True",
    ]


def test_an_event_made_before_patching_keeps_working() -> None:
    proc = run_python(
        """
        import threading
        early = threading.Event()
        import corun.monkey
        corun.monkey.patch_all()
        threading.Thread(target=early.set).start()
        print(early.wait(5), type(early._cond._lock).__module__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "_thread"]


def test_event_waiters_return_as_the_stdlibs_do_around_the_events_lock() -> None:
    proc = run_patched(
        """
        import threading
        import corun
        e = threading.Event()
        lock = e._cond._lock
        order = []

        # Woken by set: the stdlib's waiter takes the lock back only to let go of it.
        waiters = [corun.spawn(e.wait) for _ in range(3)]
        corun.sleep(0.01)
        e.set()
        print([w.get(timeout=2) for w in waiters], lock.locked(), len(e._cond._waiters))

        # Timed out while the lock is held elsewhere: it waits for the lock, as the stdlib's does.
        e.clear()
        def timed():
            order.append(("timed out", e.wait(0.05)))
        waiter = corun.spawn(timed)
        corun.sleep(0.01)
        lock.acquire()
        corun.sleep(0.3)
        order.append(("released", None))
        lock.release()
        waiter.join(2)
        print(order, lock.locked())

        # Woken by a notify of the event's condition: True, as the stdlib's, with the flag still clear.
        waiter = corun.spawn(e.wait)
        corun.sleep(0.01)
        with e._cond:
            e._cond.notify()
        print(waiter.get(timeout=2), e.is_set(), lock.locked(), len(lock._waiters))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[True, True, True] False 0",
        "[('released', None), ('timed out', False)] False",
        "True False False 0",
    ]


def test_event_set_hands_its_lock_to_the_next_waiter_when_the_first_was_killed() -> None:
    proc = run_patched(
        """
        import threading
        import corun
        e = threading.Event()
        first = corun.spawn(e.wait)
        second = corun.spawn(e.wait)
        corun.sleep(0.01)
        first.kill(block=False)  # delivered before set's wake-up
        e.set()
        print(second.get(timeout=2), first.dead, type(first.value).__name__)
        print(e._cond._lock.locked(), len(e._cond._waiters), len(e._cond._lock._waiters))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["True True GreenletExit", "False 0 0"]
