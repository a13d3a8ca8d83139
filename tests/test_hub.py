"""The hub: ready callbacks, timers, deadlock reports, threads, errors, fork and Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import corun
import corun.hub
from corun import _originals
from corun.hub import BlockingSwitchOutError, Hub, HubStatistics, LoopExit, get_hub
from corun.testing import ManualClock, fresh_hub

from .conftest import ROOT, PipeLines, expects_loop_exit, process_group, run_json, run_patched, run_python


@pytest.fixture
def fake() -> Iterator[tuple[Hub, ManualClock]]:
    """A hub on a fake clock, installed as this thread's hub for one test.

    Only ready callbacks and ``idle`` may drive it: a timer that is not yet
    due on the fake clock would make it really poll until that deadline.
    """
    clock = ManualClock()
    with fresh_hub(clock) as h:
        yield h, clock


def heap_size(hub: Hub) -> int:
    """Timers in the hub's heap, cancelled ones not yet dropped included."""
    stats = hub.statistics()
    return stats.timers + stats.cancelled_timers


def popen_python(source: str) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """Start ``source`` in a fresh interpreter with pipes, for tests that talk to it; killed after."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", textwrap.dedent(source)]
    return process_group(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


# -- ready callbacks ------------------------------------------------------------


def test_callbacks_run_in_fifo_order(hub: Hub) -> None:
    log: list[int] = []
    for i in range(10):
        hub.run_callback(log.append, i)
    corun.sleep(0)  # queued after them: they have all run when we are back
    assert log == list(range(10))


def test_callbacks_queued_during_a_pass_run_after_the_ones_already_queued(hub: Hub) -> None:
    log: list[str] = []

    def first() -> None:
        log.append("first")
        hub.run_callback(log.append, "queued by first")

    hub.run_callback(first)
    hub.run_callback(log.append, "second")
    corun.idle()
    assert log == ["first", "second", "queued by first"]


def test_a_cancelled_callback_does_not_run(hub: Hub) -> None:
    log: list[str] = []
    cb = hub.run_callback(log.append, "no")
    assert cb.pending
    cb.cancel()
    assert not cb.pending
    hub.run_callback(log.append, "yes")
    corun.idle()
    assert log == ["yes"]


def test_a_task_looping_on_sleep_0_cannot_starve_timers(hub: Hub) -> None:
    fired: list[int] = []
    spins = [0]

    give_up = _originals.monotonic() + 3  # so that a starved timer fails the test, not hangs it

    def spinner() -> None:
        while not fired and _originals.monotonic() < give_up:
            spins[0] += 1
            corun.sleep(0)

    g = corun.spawn(spinner)
    hub.call_later(0.05, fired.append, spins[0])
    g.join(timeout=2)
    assert fired, "the timer never fired while a task yielded in a loop"
    assert g.dead


def test_tasks_yielding_in_a_loop_interleave(hub: Hub) -> None:
    log: list[tuple[str, int]] = []

    def worker(name: str) -> None:
        for i in range(3):
            log.append((name, i))
            corun.sleep(0)

    corun.joinall([corun.spawn(worker, "a"), corun.spawn(worker, "b")])
    assert log == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


# -- timers ---------------------------------------------------------------------


def test_timers_fire_in_deadline_order_then_in_order_of_creation(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    log: list[str] = []
    for delay, name in [(3, "c"), (1, "a1"), (2, "b"), (1, "a2"), (0.5, "z")]:
        h.call_later(delay, log.append, name)
    clock.now += 10
    assert h.join()
    assert log == ["z", "a1", "a2", "b", "c"]


def test_only_due_timers_fire(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    log: list[Any] = []
    done = corun.Event()
    h.call_later(1, log.append, 1)
    h.call_later(1.5, done.set)
    h.call_later(2, log.append, 2)
    h.call_later(3, log.append, 3)
    clock.now += 1.5
    assert done.wait()
    assert log == [1]
    clock.now += 1
    corun.idle()
    assert log == [1, 2]
    clock.now += 1
    assert h.join()
    assert log == [1, 2, 3]


def test_a_cancelled_timer_never_fires(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    log: list[str] = []
    t = h.call_later(1, log.append, "cancelled")
    h.call_later(2, log.append, "kept")
    assert t.pending
    t.cancel()
    t.cancel()  # a second cancel changes nothing
    assert not t.pending
    clock.now += 10
    assert h.join()
    assert log == ["kept"]
    assert h.statistics().cancelled_timers == 0


def test_a_timer_cancelled_by_an_earlier_timer_of_the_same_batch_never_fires(
    fake: tuple[Hub, ManualClock],
) -> None:
    h, clock = fake
    log: list[str] = []
    later: list[Any] = []
    h.call_later(1, lambda: later[0].cancel())
    later.append(h.call_later(1, log.append, "cancelled"))
    fired = h.call_later(1, log.append, "fired")
    clock.now += 10
    assert h.join()
    assert log == ["fired"]
    assert not fired.pending
    fired.cancel()  # after it fired: a no-op
    assert h.statistics().cancelled_timers == 0


def test_cancelled_timer_count_stays_true_when_a_batch_cancel_compacts_the_heap(
    fake: tuple[Hub, ManualClock],
) -> None:
    h, clock = fake
    for t in [h.call_later(3600, print) for _ in range(64)]:
        t.cancel()
    assert h.statistics().cancelled_timers == 64
    later: list[Any] = []
    # This cancel is the 65th: it compacts the heap while the timer it
    # cancels has already left the heap to fire in this batch.
    h.call_later(1, lambda: later[0].cancel())
    later.append(h.call_later(1, print, "never"))
    kept = h.call_later(3600, print)
    clock.now += 10
    corun.idle()
    assert kept.pending
    # Live timers are the heap's size less the count of cancelled ones: a
    # miscount would show here as other than the one timer left.
    assert h.statistics().timers == 1
    kept.cancel()


def test_a_due_timer_not_yet_fired_is_work_that_can_still_run(fake: tuple[Hub, ManualClock]) -> None:
    h, clock = fake
    seen: list[bool] = []
    done = corun.Event()  # a wait no timer or fd can end: not work by itself
    h.call_later(1, lambda: seen.append(h.nothing_else_can_run()))
    h.call_later(1, lambda: (seen.append(h.nothing_else_can_run()), done.set()))
    clock.now += 10
    assert done.wait()
    # Both left the heap together; the first to fire must still see the second.
    assert seen == [False, True]


def test_many_cancelled_long_timers_do_not_grow_the_heap(hub: Hub) -> None:
    live = [hub.call_later(3600, print) for _ in range(100)]
    largest = 0
    for _ in range(10_000):
        hub.call_later(3600, print).cancel()
        largest = max(largest, heap_size(hub))
    assert largest < 400
    assert hub.statistics().timers == 100
    for t in live:
        t.cancel()


def test_timed_waits_woken_early_do_not_grow_the_heap(hub: Hub) -> None:
    largest = 0
    for i in range(10_000):
        w = corun.hub.Waiter(hub, "early")
        hub.wake(w, i)
        assert w.get(3600) == i
        largest = max(largest, heap_size(hub))
    assert largest < 200


def test_statistics_count_what_the_hub_holds(fake: tuple[Hub, ManualClock]) -> None:
    h, _ = fake
    assert h.statistics() == HubStatistics(ready=0, timers=0, cancelled_timers=0, io_waits=0, pending=0)
    h.run_callback(print)
    h.run_callback(print).cancel()  # still queued: it is skipped when its turn comes
    h.call_later(10, print)
    h.call_later(20, print).cancel()
    h.pending += 1
    try:
        assert h.statistics() == HubStatistics(ready=2, timers=1, cancelled_timers=1, io_waits=0, pending=1)
    finally:
        h.pending -= 1


def test_statistics_count_passes_and_callbacks_run(hub: Hub) -> None:
    before = hub.statistics()
    for _ in range(50):
        hub.run_callback(int)
        corun.sleep(0)  # one pass runs the callback and switches back here
    after = hub.statistics()
    assert 50 <= after.passes - before.passes <= 60
    assert after.callbacks_run - before.callbacks_run == 100  # 50 callbacks, 50 switches back


# -- deadlock reports -----------------------------------------------------------


@expects_loop_exit
def test_loop_exit_names_the_event_the_main_task_waits_on(hub: Hub) -> None:
    ev = corun.Event()
    with pytest.raises(LoopExit) as info:
        ev.wait()
    msg = str(info.value)
    assert "would block forever" in msg
    assert "waits on <Event unset" in msg and f"at {id(ev):#x}>" in msg, msg


@expects_loop_exit
def test_loop_exit_names_every_stuck_task(hub: Hub) -> None:
    ev = corun.Event()
    g = corun.spawn(ev.wait)
    g.name = "stuck-on-event"
    with pytest.raises(LoopExit) as info:
        g.join()
    msg = str(info.value)
    assert f"{g!r} waits on <Event unset" in msg, msg
    assert f"waits on {g!r}" in msg, msg  # the main task's join
    g.kill()


def test_no_loop_exit_while_an_fd_wait_can_still_wake_a_task(hub: Hub) -> None:
    # A thread that the hub does not know about writes to the socket: only
    # the fd registration tells the hub that the wait is not hopeless.
    import socket

    a, b = socket.socketpair()
    a.setblocking(False)
    ev = corun.Event()

    def reader() -> None:
        hub.wait_readable(a.fileno())
        ev.set()

    corun.spawn(reader)
    t = threading.Timer(0.2, b.send, (b"x",))
    t.start()
    try:
        assert ev.wait(), "the reader was never woken"
    finally:
        t.join()
        hub.notify_closing(a.fileno())
        a.close()
        b.close()


def test_no_loop_exit_while_thread_work_is_pending(hub: Hub) -> None:
    ev = corun.Event()
    ran_on: list[int] = []
    hub.pending += 1

    def done() -> None:
        hub.pending -= 1
        ran_on.append(_originals.get_ident())
        ev.set()

    def worker() -> None:
        _originals.real_sleep(0.2)
        hub.run_callback_threadsafe(done)

    t = threading.Thread(target=worker)
    start = _originals.monotonic()
    t.start()
    try:
        assert ev.wait() is True
    finally:
        t.join()
    assert _originals.monotonic() - start >= 0.15
    assert ran_on == [hub.thread_ident]
    assert hub.pending == 0


# -- other threads ----------------------------------------------------------------


def test_callbacks_from_many_threads_all_run_on_the_hub_thread(hub: Hub) -> None:
    threads, per_thread = 10, 100
    seen: list[tuple[int, int, int]] = []
    all_in = corun.Event()
    hub.pending += threads * per_thread

    def record(t: int, i: int) -> None:
        seen.append((t, i, _originals.get_ident()))
        hub.pending -= 1
        if hub.pending == 0:
            all_in.set()

    def producer(t: int) -> None:
        for i in range(per_thread):
            hub.run_callback_threadsafe(record, t, i)

    workers = [threading.Thread(target=producer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    try:
        assert all_in.wait(timeout=5)
    finally:
        for w in workers:
            w.join()
    assert len(seen) == threads * per_thread
    assert {ident for _, _, ident in seen} == {threading.get_ident()}
    for t in range(threads):
        assert [i for tt, i, _ in seen if tt == t] == list(range(per_thread))


def test_each_os_thread_has_its_own_hub(hub: Hub) -> None:
    out: dict[str, Any] = {}

    def in_thread() -> None:
        try:
            h = get_hub()
            out["hub"] = h
            out["same"] = get_hub() is h
            tasks = [corun.spawn(lambda i=i: (corun.sleep(0.01), i)[1]) for i in range(3)]
            corun.joinall(tasks)
            out["values"] = [g.value for g in tasks]
            out["ident"] = h.thread_ident
            h.destroy()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(timeout=5)
    assert "error" not in out, out.get("error")
    assert out["hub"] is not hub
    assert out["same"]
    assert out["values"] == [0, 1, 2]
    assert out["ident"] == t.ident
    assert get_hub() is hub


def test_a_thread_given_an_ended_threads_ident_gets_a_hub_of_its_own(hub: Hub) -> None:
    # get_hub remembers the hub it last answered with, by thread ident, and
    # the OS gives an ended thread's ident to the next thread it starts.
    hubs: list[tuple[int, Hub]] = []  # kept, so that no hub's id is reused either

    def in_thread() -> None:
        h = get_hub()
        hubs.append((threading.get_ident(), h))
        corun.sleep(0)  # the hub runs, and stays suspended in the ended thread

    reused = False
    for _ in range(50):
        t = threading.Thread(target=in_thread)
        t.start()
        t.join(timeout=5)
        assert not t.is_alive()
        if len(hubs) >= 2 and hubs[-1][0] == hubs[-2][0]:
            reused = True
            break
    assert reused, "the OS never gave a joined thread's ident to the next thread"
    assert len({id(h) for _, h in hubs}) == len(hubs)
    assert get_hub() is hub


def test_a_destroyed_hub_is_never_answered_again_and_a_swapped_in_hub_is(hub: Hub) -> None:
    assert get_hub() is hub
    with fresh_hub() as other:
        assert get_hub() is other
        corun.sleep(0)  # runs on the swapped-in hub
    assert other.destroyed
    assert get_hub() is hub
    corun.sleep(0)
    hub.destroy()
    fresh = get_hub()
    assert fresh is not hub and not fresh.destroyed
    corun.sleep(0)


# -- errors ---------------------------------------------------------------------


def test_a_callback_that_blocks_is_reported_and_the_hub_keeps_running(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.run_callback(corun.sleep, 0.1)
    corun.sleep(0)  # the callback was queued first
    err = capsys.readouterr().err
    assert err.count("BlockingSwitchOutError") >= 1
    assert err.count("Traceback") == 1
    assert corun.spawn(lambda: "alive").get(timeout=2) == "alive"
    corun.sleep(0.01)


def test_sleep_0_inside_the_hub_raises_too(hub: Hub) -> None:
    caught: list[BaseException] = []

    def cb() -> None:
        try:
            corun.sleep(0)
        except BlockingSwitchOutError as exc:
            caught.append(exc)

    hub.run_callback(cb)
    corun.sleep(0)
    assert len(caught) == 1


def test_an_exception_in_a_callback_is_printed_once_and_the_hub_survives(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom() -> None:
        raise ValueError("boom-in-callback")

    def timer_boom() -> None:
        raise KeyError("boom-in-timer")

    hub.run_callback(boom)
    hub.call_later(0.01, timer_boom)
    log: list[str] = []
    hub.run_callback(log.append, "next callback still runs")
    corun.sleep(0.05)
    err = capsys.readouterr().err
    assert err.count("ValueError: boom-in-callback") == 1
    assert err.count("KeyError: 'boom-in-timer'") == 1
    assert log == ["next callback still runs"]
    assert corun.spawn(lambda: 7).get(timeout=2) == 7


# -- idle and join ----------------------------------------------------------------


@pytest.mark.parametrize("with_fd_wait", [False, True])
def test_idle_returns_only_when_nothing_else_is_ready(hub: Hub, with_fd_wait: bool) -> None:
    import socket

    log: list[tuple[str, int]] = []

    def worker(name: str, n: int) -> None:
        for i in range(n):
            log.append((name, i))
            corun.sleep(0)

    a, b = socket.socketpair()
    a.setblocking(False)
    # An fd wait that never fires makes the hub poll between passes.
    reader = corun.spawn(hub.wait_readable, a.fileno()) if with_fd_wait else None
    corun.spawn(worker, "a", 5)
    corun.spawn(worker, "b", 3)
    sleeper = corun.spawn(corun.sleep, 10)  # a timer that is far away is not "ready"
    corun.idle()
    assert sorted(log) == [("a", i) for i in range(5)] + [("b", i) for i in range(3)]
    assert not sleeper.dead
    sleeper.kill()
    if reader is not None:
        assert hub.io.waiting == 1
        reader.kill()
    a.close()
    b.close()


def test_idle_lets_a_task_with_a_ready_fd_run_first(hub: Hub) -> None:
    import socket

    a, b = socket.socketpair()
    a.setblocking(False)
    log: list[str] = []

    def reader() -> None:
        hub.wait_readable(a.fileno())
        log.append("read")

    corun.spawn(reader)
    corun.sleep(0)
    b.send(b"x")
    corun.idle()
    assert log == ["read"]
    hub.notify_closing(a.fileno())
    a.close()
    b.close()


def test_join_and_wait_return_when_no_work_is_left(hub: Hub) -> None:
    done: list[int] = []

    def work(i: int) -> None:
        corun.sleep(0.01 * i)
        done.append(i)

    for i in range(5):
        corun.spawn(work, i)
    assert hub.join() is True
    assert sorted(done) == [0, 1, 2, 3, 4]
    for i in range(3):
        corun.spawn(work, i)
    assert corun.wait() is True
    assert len(done) == 8


def test_join_returns_false_on_timeout_while_work_remains(hub: Hub) -> None:
    sleeper = corun.spawn(corun.sleep, 10)
    start = _originals.monotonic()
    assert hub.join(timeout=0.05) is False
    assert corun.wait(timeout=0.05) is False
    assert _originals.monotonic() - start < 2
    sleeper.kill()
    assert hub.join() is True


def test_join_returns_when_only_hopeless_waits_are_left(hub: Hub) -> None:
    g = corun.spawn(corun.Event().wait)
    assert hub.join() is True
    assert not g.dead
    g.kill()


# -- lifecycle hooks --------------------------------------------------------------


def test_lifecycle_hooks_hear_of_destroy_while_the_hub_works_and_after_fork_in_the_child() -> None:
    proc = run_python(
        """
        import os, threading
        import corun
        from corun.hub import get_hub, register_lifecycle_hooks

        def broken(hub):
            raise ValueError("a broken hook")

        def on_destroy(hub):
            # Still whole: a thread's callback reaches it.
            ev = corun.Event()
            hub.pending += 1
            def arrived():
                hub.pending -= 1
                ev.set()
            threading.Thread(target=hub.run_callback_threadsafe, args=(arrived,)).start()
            print("destroy", hub is first, hub.destroyed, ev.wait(timeout=2), flush=True)

        def after_fork(hub):
            print("fork", os.getpid() != parent, hub is first, hub.thread_ident == threading.get_ident(),
                  flush=True)

        register_lifecycle_hooks(on_destroy=broken, after_fork_in_child=broken)
        register_lifecycle_hooks(on_destroy=on_destroy, after_fork_in_child=after_fork)
        parent = os.getpid()
        first = get_hub()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if corun.spawn(lambda: 42).get(timeout=2) == 42 else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        first.destroy()
        print("destroyed", first.destroyed, get_hub() is not first, flush=True)
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    # after_fork runs in the child only, destroy once; the broken hook is
    # reported each time and keeps neither the others nor the hub from going on.
    assert proc.stdout.splitlines() == [
        "fork True True True",
        "destroy True False True",
        "destroyed True True",
    ]
    assert proc.stderr.count("ValueError: a broken hook") == 2, proc.stderr
    assert "hook" in proc.stderr and "after fork" in proc.stderr and "on destroy" in proc.stderr


def test_a_wake_up_that_fails_is_reported_naming_its_waiter() -> None:
    # The waiter's task is a greenlet of a thread that has ended: switching to it fails.
    proc = run_python(
        """
        import threading
        import greenlet
        import corun
        from corun._waiter import Waiter
        from corun.hub import get_hub

        parked = []
        def other_thread():
            g = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
            g.switch()
            parked.append(g)
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        hub = get_hub()
        w = Waiter(hub, "the other thread's task")
        w.greenlet = parked[0]
        hub.wake(w, "value")
        corun.sleep(0)
        corun.sleep(0)
        print("loop goes on")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "loop goes on\n"
    assert "wake-up of <Waiter the other thread's task task=" in proc.stderr
    assert "failed with error" in proc.stderr


# -- processes: fork, Ctrl-C, SystemExit ----------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_gives_the_child_a_fresh_working_hub() -> None:
    proc = run_python(
        """
        import importlib.util, os, socket, sys, threading
        import corun
        from corun.hub import get_hub

        hub = get_hub()
        a, b = socket.socketpair()
        a.setblocking(False)
        log = []

        def sleeper():
            corun.sleep(0.2)
            log.append("slept")

        def reader():
            try:
                hub.wait_readable(a.fileno())
                log.append("read")
            except OSError as exc:
                log.append(("reader failed", exc.errno))

        s = corun.spawn(sleeper)
        r = corun.spawn(reader)
        corun.sleep(0)
        assert hub.io.waiting == 1
        parent_waker = hub._waker.read_fd
        parent_epoll = getattr(hub.io, "_epoll", None)

        pid = os.fork()
        if pid == 0:
            ok = False
            try:
                assert get_hub() is hub
                assert hub._waker.read_fd != parent_waker
                # Unregister the inherited wait here: that must not touch the
                # parent's registration, so the parent's reader still wakes.
                hub.notify_closing(a.fileno())
                r.join(timeout=2)
                assert log == [("reader failed", 9)], log
                corun.sleep(0.01)
                assert corun.spawn(lambda: 41 + 1).get(timeout=2) == 42
                s.join(timeout=2)
                assert "slept" in log
                c, d = socket.socketpair()
                c.setblocking(False)
                def child_reader():
                    hub.wait_readable(c.fileno(), timeout=2)
                    return c.recv(10)
                g = corun.spawn(child_reader)
                corun.sleep(0)
                d.send(b"child")
                assert g.get(timeout=2) == b"child"
                # The new wake-up fd works: a thread's callback arrives.
                ev = corun.Event()
                hub.pending += 1
                def from_thread():
                    hub.pending -= 1
                    ev.set()
                threading.Thread(target=hub.run_callback_threadsafe, args=(from_thread,)).start()
                assert ev.wait(timeout=2)
                if importlib.util.find_spec("corun.threadpool") is not None:
                    assert hub.threadpool.apply(pow, (2, 10)) == 1024
                ok = True
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0 if ok else 1)

        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        if parent_epoll is not None:
            assert hub.io._epoll is parent_epoll
        assert hub._waker.read_fd == parent_waker
        b.send(b"x")
        r.join(timeout=2)
        s.join(timeout=2)
        assert sorted(map(str, log)) == ["read", "slept"], log
        assert corun.spawn(lambda: "parent").get(timeout=2) == "parent"
        print("parent ok")
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "parent ok", proc.stdout + proc.stderr


def test_ctrl_c_reaches_the_main_task_and_killall_runs_finally_blocks() -> None:
    with popen_python(
        """
        import corun

        def sleeper(i):
            try:
                corun.sleep(10)
            finally:
                print(f"finally {i}", flush=True)

        tasks = [corun.spawn(sleeper, i) for i in range(3)]
        # Printed once the sleepers are parked and the main task waits.
        corun.spawn(print, "ready", flush=True)
        try:
            corun.joinall(tasks)
            print("joined without Ctrl-C", flush=True)
        except KeyboardInterrupt:
            print("KI in main", flush=True)
            corun.killall(tasks)
            print("all killed", flush=True)
        """
    ) as proc:
        stdout = PipeLines(proc.stdout)
        assert stdout.readline() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        out = stdout.take_buffered() + out
    lines = out.splitlines()
    assert proc.returncode == 0, err
    assert lines[0] == "KI in main", out + err
    assert sorted(lines[1:4]) == ["finally 0", "finally 1", "finally 2"]
    assert lines[4:] == ["all killed"]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_an_exception_from_a_signal_handler_while_the_hub_polls_reaches_the_main_task(hub: Hub) -> None:
    class Alarm(Exception):
        pass

    def handler(signum: int, frame: Any) -> None:
        raise Alarm("raised by the signal handler")

    old = signal.signal(signal.SIGUSR1, handler)
    sender = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        sender.start()
        start = _originals.monotonic()
        with pytest.raises(Alarm):
            corun.sleep(10)  # the hub is in epoll_wait when the signal comes
        assert _originals.monotonic() - start < 5  # sent after 0.1 s: it cut the 10 s sleep short
    finally:
        sender.join()
        signal.signal(signal.SIGUSR1, old)
    assert hub.statistics().timers == 0  # the sleep's timer went with it
    assert corun.spawn(lambda: "still running").get(timeout=2) == "still running"


def test_system_exit_in_a_task_reaches_the_main_task() -> None:
    proc = run_python(
        """
        import corun

        def quit():
            raise SystemExit(3)

        corun.spawn(quit)
        try:
            corun.sleep(5)
        except SystemExit as exc:
            print("SystemExit in main", exc.code, flush=True)
            raise
        print("not reached")
        """,
        timeout=30,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == "SystemExit in main 3"


def test_a_hub_created_in_a_thread_releases_its_fds_when_the_thread_ends() -> None:
    import gc
    import threading

    def fd_count() -> int:
        return len(os.listdir("/proc/self/fd"))

    def job() -> None:
        r, w = os.pipe()
        try:
            os.set_blocking(r, False)
            try:
                corun.hub.wait_readable(r, 0.02)
            except TimeoutError:
                pass
        finally:
            os.close(r)
            os.close(w)

    before = fd_count()
    threads = [threading.Thread(target=job) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert fd_count() == before


# -- a wait inside another wait's start ----------------------------------------------


def test_a_finalizer_that_waits_while_a_task_starts_a_wait_does_not_take_its_wake_up() -> None:
    # The collector may run a finalizer in a task between the moment its wait
    # is registered and the moment it parks; a finalizer that waits itself
    # (multiprocessing's, joining processes) must not swallow that wait's wake-up.
    data = run_json(
        """
        import gc, json, os, time
        import corun
        from greenlet import getcurrent
        from corun.hub import READ, get_hub, wait_readable

        hub = get_hub()
        main = getcurrent()
        r, w = os.pipe()
        nested = []

        def clock():
            # Python code the wait runs after it registered and before it parks
            # (its timer reads the clock), with an allocation that makes a
            # collection due: it runs here in every build (3.12 and later run a
            # due collection at the next check, as after this call).
            [None]
            return time.monotonic()

        hub.clock = clock

        def finalizer_that_waits(phase, info):
            if phase == "stop" and not nested and getcurrent() is main and hub.io.waiter_count(r, READ):
                nested.append(time.monotonic())
                corun.sleep(0.3)  # the pipe gets its byte meanwhile

        corun.spawn_later(0.1, os.write, w, b"x")
        gc.callbacks.append(finalizer_that_waits)
        gc.set_threshold(1)
        start = time.monotonic()
        try:
            wait_readable(r, timeout=5)
            outcome = os.read(r, 1).decode()
        except TimeoutError:
            outcome = "timed out"
        elapsed = time.monotonic() - start
        gc.callbacks.remove(finalizer_that_waits)
        print(json.dumps({"outcome": outcome, "elapsed": elapsed, "nested": len(nested)}))
        """
    )
    assert data["nested"] == 1, "the collector never ran while the wait was being set up"
    assert data["outcome"] == "x"
    assert data["elapsed"] < 3


def test_a_notify_while_the_condition_releases_a_lock_that_waits_is_not_lost() -> None:
    # A Condition over a lock of the program's whose release waits (cooperatively,
    # once patched): the waiter is in line before it releases, so a notify
    # that comes during that release is this wait's, not the release's sleep's.
    proc = run_patched(
        """
        import threading, time

        class SlowToRelease:
            def __init__(self):
                self._lock = threading.Lock()
            def acquire(self, *args):
                return self._lock.acquire(*args)
            def release(self):
                self._lock.release()
                time.sleep(0.3)
            def __enter__(self):
                return self.acquire()
            def __exit__(self, *exc):
                self.release()

        cond = threading.Condition(SlowToRelease())

        def notifier():
            with cond:
                cond.notify()

        with cond:
            t = threading.Thread(target=notifier)
            t.start()
            start = time.monotonic()
            notified = cond.wait(timeout=5)
            elapsed = time.monotonic() - start
        t.join()
        print(notified, elapsed < 3)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]
