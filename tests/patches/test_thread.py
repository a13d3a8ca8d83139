"""The cooperative ``_thread``: locks with ``_thread`` semantics that park tasks, threads that are tasks."""

from __future__ import annotations

import _thread
import json
import signal
import sys
import time

import corun.patches.thread as cothread
import pytest

import corun
from corun import _originals

from ..conftest import expects_loop_exit, run_patched, run_python


def outcome(call: object, *args: object) -> tuple[str, str]:
    try:
        call(*args)  # type: ignore[operator]
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


@pytest.mark.parametrize(
    "args", [(True, None), (False, 1), (True, -2), (True, 1e20), (True, "x"), (0, -1), (1, 0.01), ("x",)]
)
def test_acquire_arguments_checked_as_the_original_does(args: tuple[object, ...]) -> None:
    def attempt(lock: object) -> None:
        if lock.acquire(*args):  # type: ignore[attr-defined]
            lock.release()  # type: ignore[attr-defined]

    assert outcome(attempt, cothread.allocate_lock()) == outcome(attempt, _thread.allocate_lock())


def test_release_of_an_unlocked_lock_fails_as_the_original_does() -> None:
    assert outcome(cothread.allocate_lock().release) == outcome(_thread.allocate_lock().release)
    assert outcome(cothread.RLock().release) == outcome(_thread.RLock().release)


def test_lock_parks_only_the_waiting_task() -> None:
    lock = cothread.allocate_lock()
    order: list[str] = []
    ticks = [0]

    def holder() -> None:
        with lock:
            order.append("held")
            corun.sleep(0.2)
            order.append("released")

    def waiter() -> None:
        with lock:
            order.append("waiter got it")

    def ticker() -> None:
        while len(order) < 3:
            ticks[0] += 1
            corun.sleep(0.01)

    corun.joinall([corun.spawn(holder), corun.spawn(waiter), corun.spawn(ticker)], raise_error=True)
    assert order == ["held", "released", "waiter got it"]
    assert ticks[0] >= 5  # the hub kept running while the waiter was parked
    assert not lock.locked()


def test_release_from_another_task_is_allowed() -> None:
    lock = cothread.allocate_lock()
    lock.acquire()
    corun.spawn(lock.release).join()
    assert not lock.locked()
    assert "unlocked" in repr(lock)


def test_timed_acquire_gives_up() -> None:
    lock = cothread.allocate_lock()
    lock.acquire()
    start = time.monotonic()
    assert lock.acquire(True, 0.1) is False
    assert 0.05 < time.monotonic() - start < 2
    assert lock.acquire(False) is False
    lock.release()
    assert lock.acquire(True, 0.1) is True


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = cothread.allocate_lock()
    lock.acquire()
    got: list[int] = []

    def take(i: int) -> None:
        with lock:
            got.append(i)
            corun.sleep(0)

    tasks = [corun.spawn(take, i) for i in range(6)]
    corun.sleep(0.01)
    lock.release()
    corun.joinall(tasks, raise_error=True)
    assert got == list(range(6))


def test_a_waiter_killed_after_the_hand_over_passes_the_lock_on() -> None:
    lock = cothread.allocate_lock()
    lock.acquire()
    got: list[str] = []
    first = corun.spawn(lambda: got.append("first") if lock.acquire() else None)
    second = corun.spawn(lambda: got.append("second") if lock.acquire() else None)
    corun.sleep(0.01)
    # The kill is queued first; the release then pops `first` and queues its
    # wake-up, which comes too late: `first` leaves owning the lock.
    first.kill(block=False)
    lock.release()
    corun.joinall([first, second], timeout=2)
    assert got == ["second"]
    assert second.dead


def test_a_waiter_timing_out_after_the_hand_over_keeps_the_lock() -> None:
    lock = cothread.allocate_lock()
    lock.acquire()
    results: list[bool] = []
    task = corun.spawn(lambda: results.append(lock.acquire(True, 0.05)))
    corun.sleep(0.01)
    lock.release()
    # Block the hub past the waiter's deadline: the grant and the timer are
    # both due when it next runs.
    _originals.real_sleep(0.1)
    task.join()
    assert results == [True]
    assert lock.locked()


def test_lock_shared_with_a_real_os_thread() -> None:
    lock = cothread.allocate_lock()
    held = _originals.allocate_lock()
    held.acquire()
    events: list[str] = []

    def os_thread() -> None:
        lock.acquire()  # uncontended: the lock is free
        held.release()
        _originals.real_sleep(0.2)
        events.append("thread releases")
        lock.release()
        # Now contended: the thread waits on its own hub for the task.
        lock.acquire()
        events.append("thread got it back")
        lock.release()

    _originals.start_new_thread(os_thread, ())
    while not held.acquire(False):
        corun.sleep(0.005)
    ticks = [0]

    def ticker() -> None:
        while "thread releases" not in events:
            ticks[0] += 1
            corun.sleep(0.01)

    t = corun.spawn(ticker)
    lock.acquire()  # parks this task while the OS thread holds the lock
    events.append("task got it")
    corun.sleep(0.1)
    lock.release()
    t.join()
    deadline = time.monotonic() + 5
    while "thread got it back" not in events and time.monotonic() < deadline:
        corun.sleep(0.01)
    assert events == ["thread releases", "task got it", "thread got it back"]
    assert ticks[0] >= 5


def test_try_acquire_excludes_between_os_threads_switching_all_the_time() -> None:
    # Four real OS threads race for the lock without waiting, with the GIL passed on
    # as often as the interpreter allows and let go by every holder: one holder at a
    # time, and no release refused.
    lock = cothread.allocate_lock()
    rounds = 5_000
    inside = [0]
    taken = [0] * 4
    missed = [0] * 4
    faults: list[str] = []
    done = _originals.allocate_lock()
    done.acquire()
    finished = [0]
    count_lock = _originals.allocate_lock()

    def racer(index: int) -> None:
        try:
            for _ in range(rounds):
                if lock.acquire(False):
                    inside[0] += 1
                    if inside[0] != 1:
                        faults.append(f"{inside[0]} holders")
                    taken[index] += 1
                    _originals.real_sleep(0)  # lets go of the GIL: the others try meanwhile
                    inside[0] -= 1
                    lock.release()
                else:
                    missed[index] += 1
        except BaseException as exc:
            faults.append(repr(exc))
        finally:
            with count_lock:
                finished[0] += 1
                if finished[0] == 4:
                    done.release()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for index in range(4):
            _originals.start_new_thread(racer, (index,))
        assert done.acquire(True, 60)
    finally:
        sys.setswitchinterval(interval)
    assert faults == []
    assert sum(taken) >= rounds and sum(missed) > 0, (taken, missed)  # it was contended
    assert not lock.locked()


def test_locks_cannot_be_pickled_or_copied_as_the_originals() -> None:
    import copy
    import pickle

    pairs = ((cothread.allocate_lock(), _thread.allocate_lock()), (cothread.RLock(), _thread.RLock()))
    for ours, original in pairs:
        for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
            result = outcome(attempt, ours)
            assert result == outcome(attempt, original), attempt
            assert result[0] == "TypeError"


def test_rlock_is_owned_by_one_task() -> None:
    rlock = cothread.RLock()
    assert rlock.acquire() and rlock.acquire()
    assert rlock._recursion_count() == 2 and rlock._is_owned()
    assert "owner=" in repr(rlock) and "count=2" in repr(rlock)
    other = corun.spawn(lambda: (rlock.acquire(False), outcome(rlock.release)))
    assert other.get() == (False, ("RuntimeError", "cannot release un-acquired lock"))
    state = rlock._release_save()
    assert not rlock.locked()
    rlock._acquire_restore(state)
    assert rlock._recursion_count() == 2
    rlock.release()
    rlock.release()
    assert not rlock.locked()


def test_get_ident_names_tasks_and_keeps_the_thread_ident_in_the_root() -> None:
    assert cothread.get_ident() == _thread.get_ident()
    idents = [corun.spawn(cothread.get_ident) for _ in range(5)]
    corun.joinall(idents)
    values = {task.value for task in idents}
    assert len(values) == 5 and _thread.get_ident() not in values
    assert all(task.value == id(task) for task in idents)


def test_start_new_thread_runs_a_task_and_reports_errors_as_the_original() -> None:
    seen: list[object] = []
    hooked: list[tuple[str, object]] = []

    def hook(args: object) -> None:
        hooked.append((args.err_msg, args.object))  # type: ignore[attr-defined]

    def fails() -> None:
        seen.append(cothread.get_ident())
        raise ValueError("boom")

    def exits() -> None:
        raise SystemExit(3)

    old = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        before = cothread._count()
        ident = cothread.start_new_thread(fails, ())
        cothread.start_new_thread(exits, ())
        assert cothread._count() == before + 2
        corun.sleep(0.01)
    finally:
        sys.unraisablehook = old
    assert seen == [ident]
    if sys.version_info >= (3, 13):
        assert hooked == [(f"Exception ignored in thread started by {fails!r}", None)]
    else:
        assert hooked == [("Exception ignored in thread started by", fails)]
    assert cothread._count() == before
    assert outcome(cothread.start_new_thread, 1, ()) == ("TypeError", "first arg must be callable")
    assert outcome(cothread.start_new_thread, fails, []) == ("TypeError", "2nd arg must be a tuple")


def test_thread_handle_joins_the_task() -> None:
    handle = cothread.start_joinable_thread(lambda: corun.sleep(0.1), daemon=False)
    assert not handle.is_done() and handle.ident
    handle.join(0.01)
    assert not handle.is_done()
    handle.join()
    assert handle.is_done()
    assert outcome(cothread._ThreadHandle().join) == ("RuntimeError", "thread not started")
    me: list[object] = []
    inner = cothread.start_joinable_thread(lambda: me.append(outcome(inner.join)))
    inner.join()
    assert me == [("RuntimeError", "Cannot join current thread")]


def test_shutdown_waits_for_non_daemon_threads_only() -> None:
    done: list[str] = []
    cothread.start_joinable_thread(lambda: (corun.sleep(0.1), done.append("non-daemon")), daemon=False)
    cothread.start_joinable_thread(lambda: (corun.sleep(30), done.append("daemon")), daemon=True)
    start = time.monotonic()
    cothread._shutdown()
    assert done == ["non-daemon"]
    assert time.monotonic() - start < 5


# -- under patch_all, in a fresh interpreter ---------------------------------------------


def test_threads_are_tasks_on_one_os_thread() -> None:
    proc = run_patched(
        """
        import os, threading, time
        def work():
            time.sleep(0.3)
            names.add(threading.current_thread().name)
        names = set()
        threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(200)]
        start = time.monotonic()
        for t in threads:
            t.start()
        running = threading.active_count()
        enumerated = {t.name for t in threading.enumerate()}
        os_threads = len(os.listdir("/proc/self/task"))
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        assert threading.current_thread() is threading.main_thread()
        assert threading.get_ident() == threading.main_thread().ident
        print(running, len(enumerated), os_threads, len(names), threading.active_count(), elapsed < 1.5)
        """
    )
    assert proc.returncode == 0, proc.stderr
    running, enumerated, os_threads, names, after, fast = proc.stdout.split()
    assert (running, enumerated, names, after, fast) == ("201", "201", "200", "1", "True")
    assert int(os_threads) <= 2


def test_dummy_threads_of_tasks_leave_with_them() -> None:
    proc = run_patched(
        """
        import threading, corun
        tasks = [corun.spawn(lambda: threading.current_thread().name) for _ in range(50)]
        corun.joinall(tasks)
        corun.sleep(0)  # a finished task's links run on the hub's next pass
        names = {t.value for t in tasks}
        print(len(names), all(n.startswith("Dummy-") for n in names), threading.active_count())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["50", "True", "1"]


def test_exit_waits_for_non_daemon_threads_and_not_for_daemon_ones() -> None:
    start = time.monotonic()
    proc = run_patched(
        """
        import threading, time
        threading.Thread(target=lambda: (time.sleep(0.3), print("non-daemon done", flush=True))).start()
        threading.Thread(target=lambda: (time.sleep(60), print("daemon done")), daemon=True).start()
        print("main returns", flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["main returns", "non-daemon done"]
    assert time.monotonic() - start < 30


def test_join_with_timeout_and_thread_errors() -> None:
    proc = run_patched(
        """
        import threading, time
        t = threading.Thread(target=time.sleep, args=(0.5,))
        t.start()
        t.join(0.05)
        print("alive after timed join:", t.is_alive())
        t.join()
        print("alive after join:", t.is_alive())
        bad = threading.Thread(target=lambda: 1 / 0, name="bad")
        bad.start()
        bad.join()
        print("still running")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "alive after timed join: True",
        "alive after join: False",
        "still running",
    ]
    assert "Exception in thread bad" in proc.stderr and "ZeroDivisionError" in proc.stderr


def test_thread_locals_are_per_thread() -> None:
    proc = run_patched(
        """
        import threading, _threading_local, time
        data, pure = threading.local(), _threading_local.local()
        seen = []
        def work(i):
            data.value = pure.value = i
            time.sleep(0.05)
            seen.append((data.value, pure.value) == (i, i))
        threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(len(seen), all(seen), hasattr(data, "value"))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["20", "True", "False"]


def test_a_real_thread_started_before_patching_is_still_joinable() -> None:
    proc = run_python(
        """
        import threading, time
        started, go = threading.Event(), threading.Event()
        def work():
            started.set()
            go.wait()
            time.sleep(0.1)
        real = threading.Thread(target=work)
        real.start()
        started.wait()
        from corun import monkey
        monkey.patch_all()
        import os
        print(len(os.listdir("/proc/self/task")) >= 2, real.is_alive())
        go.set()
        real.join()
        print(real.is_alive())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False"]


def test_logging_from_many_threads_through_a_switching_handler() -> None:
    proc = run_patched(
        """
        import logging, threading, time
        class Slow(logging.Handler):
            def __init__(self):
                super().__init__()
                self.lines, self.inside = [], 0
            def emit(self, record):
                self.inside += 1
                assert self.inside == 1, "two emits at once"
                time.sleep(0.001)
                self.lines.append(record.getMessage())
                self.inside -= 1
        handler = Slow()
        log = logging.getLogger("many")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        def work(i):
            for j in range(5):
                log.info("%d-%d", i, j)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(len(handler.lines), len(set(handler.lines)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["200", "200"]


def test_locks_taken_by_finalizers_at_interpreter_exit() -> None:
    # logging's handler-reference callback takes its module RLock while the
    # interpreter (and greenlet's per-thread state) is being torn down.
    proc = run_patched(
        """
        import logging, threading
        handler = logging.StreamHandler()
        class TakesALock:
            def __del__(self):
                with threading.RLock():
                    pass
        keep = TakesALock()
        """
    )
    assert proc.returncode == 0
    assert proc.stderr == ""


@expects_loop_exit
def test_corun_pool_threads_are_not_counted_as_threads() -> None:
    # CPython's own tests wait for _thread._count() to come back down; the
    # hub's pool workers stay alive while idle and must not be counted.  In a
    # fresh interpreter, because a test runner may have OS threads of its own.
    proc = run_python(
        """
        import _thread
        import corun
        import corun.patches.thread as cothread
        before = cothread._count()
        assert corun.get_hub().threadpool.apply(sum, ([1, 2],)) == 3
        print(_thread._count() > 0)  # the worker is a real OS thread...
        print(cothread._count() == before)  # ...but not one of the program's
        # And with only pool threads around, a lock deadlock is still reported.
        lock = cothread.allocate_lock()
        lock.acquire()
        try:
            lock.acquire()
        except corun.LoopExit:
            print("LoopExit")
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "LoopExit"]


def test_a_pool_worker_waits_for_a_lock_a_task_holds() -> None:
    # What a worker thread importing a module does while a task holds that
    # module's import lock (the import locks are _thread locks).
    lock = cothread.allocate_lock()
    lock.acquire()
    job = corun.get_hub().threadpool.spawn(lambda: lock.acquire(True, 10))
    corun.sleep(0.1)
    lock.release()
    assert job.get(timeout=10) is True
    assert lock.locked()


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no pthread_sigmask here")
def test_a_thread_blocking_signals_leaves_the_main_thread_and_its_forks_as_they_were() -> None:
    # multiprocessing's resource sharer blocks every signal in its own
    # thread; SIGTERM must still end a pool worker forked afterwards.
    proc = run_patched(
        """
        import json, os, signal, threading, time
        seen = {}
        def outcome(how, mask):
            try:
                signal.pthread_sigmask(how, mask)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
        def helper():
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            mine = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
            seen["blocked_here"] = signal.SIGTERM in mine and signal.SIGUSR1 in mine
            now = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            seen["unblocked_here"] = signal.SIGUSR1 not in now and signal.SIGTERM in now
            seen["errors"] = [outcome(12345, []), outcome(signal.SIG_BLOCK, [0])]
        t = threading.Thread(target=helper)
        t.start()
        t.join()
        main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        os.kill(pid, signal.SIGTERM)
        status = os.waitpid(pid, 0)[1]
        print(json.dumps({**seen, "main_blocks_term": signal.SIGTERM in main_mask,
                          "child_ended_by": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["blocked_here"] and out["unblocked_here"]
    assert out["errors"] == [
        "OSError: [Errno 22] Invalid argument",
        f"ValueError: signal number 0 out of range [1; {signal.NSIG - 1}]",
    ]
    assert not out["main_blocks_term"]
    assert out["child_ended_by"] == signal.SIGTERM
