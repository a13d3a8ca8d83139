"""Tasks: starting, joining, getting results, killing, links, errors, waiting helpers."""

from __future__ import annotations

import contextvars
import gc
import re
import socket
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import corun
from corun import Event, Greenlet, GreenletExit, Timeout, getcurrent, sleep, spawn
from corun.greenlet import iwait, joinall, kill, killall, spawn_later, wait
from corun.hub import Hub, notify_closing, wait_readable
from corun.testing import VirtualClock, run_in_thread

from .conftest import now

pytestmark = pytest.mark.corun(clock="virtual")


def returns(value: Any) -> Any:
    return value


def fails(exc: BaseException) -> None:
    raise exc


# -- starting ---------------------------------------------------------------


def test_start_runs_on_next_pass_not_immediately() -> None:
    ran: list[int] = []
    g = Greenlet(ran.append, 1)
    assert not g.started and not g.dead
    g.start()
    assert g.started and ran == []
    g.start()  # a second start is a no-op, not a second run
    g.join()
    assert ran == [1]
    assert g.dead and g.ready() and g.successful()


def test_spawn_and_classmethod_spawn_pass_arguments() -> None:
    g = spawn(lambda a, b=0: a + b, 2, b=3)
    h = Greenlet.spawn(lambda a: a * 10, 4)
    assert g.get() == 5
    assert h.get() == 40
    assert isinstance(h, Greenlet)


def test_start_later_and_spawn_later_wait_before_running() -> None:
    events: list[str] = []
    t0 = now()
    late = spawn_later(0.1, events.append, "late")
    g = Greenlet(events.append, "later")
    g.start_later(0.05)
    soon = spawn(events.append, "soon")
    assert g.started and late.started
    joinall([late, g, soon])
    assert events == ["soon", "later", "late"]
    assert now() - t0 >= 0.09
    cls_late = Greenlet.spawn_later(0.01, returns, 7)
    assert cls_late.get() == 7


def test_a_task_class_of_its_own_switch_is_resumed_through_it() -> None:
    resumed: list[str] = []

    class Traced(corun.Greenlet):
        def switch(self, *args: Any, **kwargs: Any) -> Any:
            resumed.append("switch")
            return super().switch(*args, **kwargs)

    def body() -> None:
        for _ in range(3):
            corun.sleep(0)
        corun.sleep(0.01)

    task = Traced(body)
    task.start()
    task.join()
    # Started once, then resumed after each of the three sleep(0)s and the timed sleep.
    assert resumed == ["switch"] * 5


def test_spawn_runs_tasks_in_spawn_order() -> None:
    order: list[int] = []
    tasks = [spawn(order.append, i) for i in range(10)]
    joinall(tasks)
    assert order == list(range(10))


# -- join / get -------------------------------------------------------------


def test_join_timeout_returns_without_error_and_leaves_nothing_behind(hub: Hub) -> None:
    ev = Event()
    g = spawn(ev.wait)
    t0 = now()
    assert g.join(timeout=0.05) is None
    assert now() - t0 >= 0.04
    assert not g.dead
    assert not g._links
    assert hub.statistics().timers == 0
    ev.set()
    g.join()
    assert g.dead and g.value is True


def test_get_raises_timeout_when_not_ready(hub: Hub) -> None:
    ev = Event()
    g = spawn(ev.wait)
    with pytest.raises(Timeout):
        g.get(block=False)
    t0 = now()
    with pytest.raises(Timeout):
        g.get(timeout=0.05)
    assert now() - t0 >= 0.04
    assert hub.statistics().timers == 0 and not g._links
    ev.set()
    assert g.get() is True
    assert g.get(block=False) is True


def test_join_and_get_of_finished_task_return_at_once() -> None:
    g = spawn(returns, "x")
    g.join()
    t0 = now()
    g.join(timeout=5)
    assert g.get(timeout=5) == "x"
    assert now() - t0 < 2  # not the 5 s timeouts


def test_task_cannot_join_itself() -> None:
    def selfish() -> None:
        getcurrent().join()  # type: ignore[attr-defined]

    g = spawn(selfish)
    g.report_errors = False
    g.join()
    assert isinstance(g.exception, RuntimeError)
    assert "cannot join itself" in str(g.exception)


# -- kill -------------------------------------------------------------------


def _blocked_in(kind: str, hub: Hub, other: list[Greenlet[Any]]) -> Callable[[], None]:
    """A function that blocks in the named way."""
    if kind == "sleep":
        return lambda: sleep(10)
    if kind == "event":
        return lambda: Event().wait()
    if kind == "event-timeout":
        return lambda: Event().wait(10)
    if kind in ("fd", "fd-timeout"):
        a, b = socket.socketpair()
        timeout = 10 if kind == "fd-timeout" else None

        def read() -> None:
            try:
                wait_readable(a.fileno(), timeout)
            finally:
                notify_closing(a.fileno())  # else the hub keeps a registration for a closed fd
                a.close()
                b.close()

        return read
    if kind in ("join", "join-timeout"):
        target = spawn(Event().wait)
        other.append(target)
        timeout = 10 if kind == "join-timeout" else None
        return lambda: target.join(timeout)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["sleep", "event", "event-timeout", "fd", "fd-timeout", "join", "join-timeout"]
)
def test_kill_blocked_task_cleans_up(kind: str, hub: Hub) -> None:
    other: list[Greenlet[Any]] = []
    block = _blocked_in(kind, hub, other)
    state: list[str] = []

    def task() -> None:
        state.append("started")
        try:
            block()
        finally:
            state.append("finally")

    g = spawn(task)
    sleep(0.02)
    assert state == ["started"]
    if kind.startswith("fd"):
        assert hub.io.waiting == 1
    t0 = now()
    g.kill()
    assert now() - t0 < 1
    assert state == ["started", "finally"]
    assert g.dead and g.successful()
    assert isinstance(g.value, GreenletExit)
    assert g.exception is None
    assert hub.statistics().timers == 0
    assert hub.io.waiting == 0
    for target in other:
        assert not target._links
        target.kill()


def test_kill_before_start_never_runs(hub: Hub) -> None:
    ran: list[int] = []
    g = Greenlet(ran.append, 1)
    g.start()
    g.kill()
    sleep(0.01)
    assert ran == []
    assert g.dead and g.ready() and g.successful()
    assert isinstance(g.value, GreenletExit)

    later = spawn_later(5, ran.append, 2)
    assert hub.statistics().timers == 1
    later.kill()
    assert hub.statistics().timers == 0
    assert later.dead and isinstance(later.value, GreenletExit)

    never = Greenlet(ran.append, 3)  # not even started
    never.kill()
    assert never.dead and isinstance(never.value, GreenletExit)
    never.start()
    sleep(0.01)
    assert ran == []


def test_kill_before_start_notifies_links() -> None:
    seen: list[Any] = []
    g = Greenlet(returns, 1)
    g.rawlink(seen.append)
    g.start()
    g.kill()
    sleep(0)
    sleep(0)
    assert seen == [g]


class Cancelled(Exception):
    pass


def test_kill_with_exception_class_and_instance() -> None:
    caught: list[BaseException] = []

    def task() -> None:
        try:
            sleep(10)
        except BaseException as exc:
            caught.append(exc)
            raise

    g = spawn(task)
    g.report_errors = False
    sleep(0)
    g.kill(Cancelled)
    assert isinstance(g.exception, Cancelled)
    assert not g.successful()
    assert caught == [g.exception]
    with pytest.raises(Cancelled):
        g.get()

    instance = Cancelled("stop now")
    h = spawn(task)
    h.report_errors = False
    sleep(0)
    kill(h, instance)
    assert h.exception is instance
    assert caught[-1] is instance

    never = Greenlet(task)
    never.kill(instance)
    assert never.dead and never.exception is instance


def test_kill_block_timeout_gives_up_on_stubborn_task() -> None:
    release = Event()

    def stubborn() -> str:
        try:
            sleep(10)
        except GreenletExit:
            release.wait(10)
        return "finished anyway"

    g = spawn(stubborn)
    sleep(0)
    t0 = now()
    g.kill(timeout=0.05)
    assert 0.04 <= now() - t0 < 2  # it gave up; the task goes on until released
    assert not g.dead
    release.set()
    assert g.get() == "finished anyway"


def test_kill_without_block_returns_before_task_dies() -> None:
    g = spawn(sleep, 10)
    sleep(0)
    g.kill(block=False)
    assert not g.dead
    g.join()
    assert g.dead and isinstance(g.value, GreenletExit)


def test_kill_of_finished_task_is_noop() -> None:
    g = spawn(returns, 5)
    g.join()
    g.kill()
    g.kill(Cancelled)
    assert g.value == 5 and g.successful()


def test_task_killing_itself_raises_in_place() -> None:
    after: list[int] = []

    def task() -> None:
        getcurrent().kill()  # type: ignore[attr-defined]
        after.append(1)

    g = spawn(task)
    g.join()
    assert after == []
    assert isinstance(g.value, GreenletExit)


# -- links ------------------------------------------------------------------


def test_link_runs_in_new_task_and_may_block(hub: Hub) -> None:
    seen: list[Any] = []

    def callback(src: Greenlet[Any]) -> None:
        me = getcurrent()
        assert me is not hub and me is not src and isinstance(me, Greenlet)
        sleep(0.01)  # allowed: it is a task of its own
        seen.append(src.value)

    g = spawn(returns, 42)
    g.link(callback)
    g.join()
    sleep(0.05)
    assert seen == [42]


def test_link_value_and_link_exception_pick_the_outcome() -> None:
    log: list[tuple[str, str]] = []
    ok = spawn(returns, 1)
    ok.name = "ok"
    bad = spawn(fails, ValueError("x"))
    bad.name = "bad"
    bad.report_errors = False
    for g in (ok, bad):
        g.link_value(lambda src: log.append(("value", src.name)))
        g.link_exception(lambda src: log.append(("exception", src.name)))
    joinall([ok, bad])
    sleep(0.01)
    assert sorted(log) == [("exception", "bad"), ("value", "ok")]


def test_rawlink_runs_in_hub_and_unlink_removes(hub: Hub) -> None:
    seen: list[Any] = []

    def raw(src: Greenlet[Any]) -> None:
        seen.append((src, getcurrent() is hub))

    removed: list[Any] = []
    g = spawn(returns, 1)
    g.rawlink(raw)
    g.link(removed.append)
    g.rawlink(removed.append)
    g.unlink(removed.append)
    g.join()
    sleep(0.01)
    assert seen == [(g, True)]
    assert removed == []


def test_link_added_after_finish_is_still_called() -> None:
    g = spawn(returns, 1)
    g.join()
    seen: list[Any] = []
    g.rawlink(seen.append)
    g.link(seen.append)
    sleep(0.01)
    assert seen == [g, g]


def test_link_rejects_non_callable() -> None:
    g = spawn(returns, 1)
    with pytest.raises(TypeError, match="callable"):
        g.link(42)  # type: ignore[arg-type]


def test_links_added_after_a_joiner_left_are_still_called() -> None:
    # A joiner that resumes during link notification unlinks itself; the
    # remaining links must not be left behind where later links get stuck.
    g = spawn(sleep, 0.01)
    joiner = spawn(g.join)
    sleep(0)
    first: list[Any] = []
    g.rawlink(first.append)
    joinall([g, joiner])
    sleep(0)
    assert first == [g]
    later: list[Any] = []
    g.rawlink(later.append)
    sleep(0)
    sleep(0)
    assert later == [g]
    assert first == [g]  # not called a second time
    assert list(iwait([g], timeout=1)) == [g]


# -- state and identity -----------------------------------------------------


def test_value_exception_exc_info() -> None:
    g = spawn(returns, "v")
    assert g.value is None and g.exception is None and g.exc_info is None
    assert not g.ready() and not g.successful()
    g.join()
    assert g.value == "v" and g.exception is None and g.exc_info is None

    err = KeyError("k")
    b = spawn(fails, err)
    b.report_errors = False
    b.join()
    assert b.value is None and b.exception is err
    assert b.exc_info is not None
    typ, val, tb = b.exc_info
    assert typ is KeyError and val is err and tb is not None
    assert b.ready() and not b.successful() and b.dead


def test_name_default_and_set() -> None:
    g = Greenlet(returns, 1)
    assert re.fullmatch(r"Greenlet-\d+", g.name)
    assert g.name == g.name  # stable
    g.name = "fetcher"
    assert g.name == "fetcher"


def test_repr_names_task_and_function() -> None:
    def fetch_page(url: str) -> str:
        return url

    g = Greenlet(fetch_page, "http://example.invalid/")
    g.name = "fetch-1"
    text = repr(g)
    assert "fetch-1" in text and "fetch_page" in text and "not started" in text
    g.start()
    g.join()
    assert "dead" in repr(g)
    b = spawn(fails, ValueError("x"))
    b.report_errors = False
    b.join()
    assert "ValueError" in repr(b)
    long = Greenlet(returns, "y" * 500)
    assert len(repr(long)) < 250


def test_generic_subscript_works_at_run_time() -> None:
    g = Greenlet[int](returns, 3)
    g.start()
    assert g.get() == 3
    assert Greenlet[str] is not None


def test_subclass_overriding_run() -> None:
    class Doubler(Greenlet[int]):
        def __init__(self, x: int) -> None:
            super().__init__()
            self.x = x

        def _run(self) -> int:
            sleep(0)
            return self.x * 2

    d = Doubler(21)
    d.start()
    assert d.get() == 42
    assert "Doubler" in repr(d)
    with pytest.raises(TypeError):
        Greenlet()


# -- errors -----------------------------------------------------------------


def explode(n: int) -> None:
    sleep(0.01)
    raise ValueError(f"boom {n}")


def test_error_is_stored_printed_once_and_reraised(capsys: pytest.CaptureFixture[str]) -> None:
    others: list[int] = []

    def keep_going() -> None:
        for i in range(5):
            sleep(0.01)
            others.append(i)

    bystander = spawn(keep_going)
    g = spawn(explode, 7)
    g.name = "exploder-7"
    g.join()
    assert isinstance(g.exception, ValueError)
    with pytest.raises(ValueError, match="boom 7") as info:
        g.get()
    with pytest.raises(ValueError):
        g.get()
    # The original traceback comes along: the raising frame is in it.
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "explode" in frames

    bystander.join()
    assert others == [0, 1, 2, 3, 4]
    # The hub survived and still runs new work.
    assert spawn(returns, 1).get() == 1

    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1
    assert "exploder-7" in err
    assert "ValueError: boom 7" in err
    assert "explode" in err


def test_errors_of_several_tasks_each_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    tasks = [spawn(explode, i) for i in range(3)]
    joinall(tasks)
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 3
    for i in range(3):
        assert err.count(f"ValueError: boom {i}") == 1


# -- concurrency ------------------------------------------------------------


def test_thousand_sleeping_tasks_run_concurrently(virtual_clock: VirtualClock) -> None:
    def job(i: int) -> int:
        sleep(0.5)
        return i * 2

    jobs = [spawn(job, i) for i in range(1000)]
    joinall(jobs)
    assert virtual_clock.elapsed == 0.5
    assert [j.value for j in jobs][:3] == [0, 2, 4]
    assert all(j.successful() for j in jobs)


def test_sleep_zero_interleaves_in_fifo_order() -> None:
    order: list[str] = []

    def worker(name: str) -> None:
        for i in range(3):
            order.append(f"{name}{i}")
            sleep(0)

    joinall([spawn(worker, n) for n in "abc"])
    assert order == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


def test_idle_waits_until_nothing_else_is_ready() -> None:
    order: list[str] = []

    def busy() -> None:
        for i in range(5):
            order.append(f"busy{i}")
            sleep(0)

    def lazy() -> None:
        corun.idle()
        order.append("idle")

    tasks = [spawn(lazy), spawn(busy)]
    joinall(tasks)
    assert order == [f"busy{i}" for i in range(5)] + ["idle"]


# -- joinall / killall / iwait / wait --------------------------------------


def test_joinall_waits_for_all_and_returns_them() -> None:
    tasks = [spawn(sleep, 0.01 * i) for i in range(5)]
    done = joinall(tasks)
    assert done == tasks
    assert all(t.dead for t in tasks)


def test_joinall_timeout_returns_only_finished() -> None:
    fast = [spawn(sleep, 0.01) for _ in range(3)]
    slow = [spawn(sleep, 10) for _ in range(2)]
    t0 = now()
    done = joinall(fast + slow, timeout=0.1)
    assert now() - t0 < 1
    assert done == fast
    killall(slow)
    assert all(t.dead for t in slow)


def test_joinall_raise_error_raises_first_failure_early() -> None:
    slow = [spawn(sleep, 10) for _ in range(3)]
    bad = spawn(explode, 1)
    bad.report_errors = False
    t0 = now()
    with pytest.raises(ValueError, match="boom 1"):
        joinall([*slow, bad], raise_error=True)
    assert now() - t0 < 1
    killall(slow)


def test_joinall_raise_error_without_failure_returns_all() -> None:
    tasks = [spawn(returns, i) for i in range(3)]
    assert sorted(t.value for t in joinall(tasks, raise_error=True)) == [0, 1, 2]


def test_joinall_count_returns_after_count() -> None:
    tasks = [spawn(sleep, d) for d in (0.2, 0.01, 10, 0.02)]
    t0 = now()
    done = joinall(tasks, count=2)
    assert now() - t0 < 1
    assert done == [tasks[1], tasks[3]]
    killall(tasks)


def test_killall_kills_every_task_and_runs_finally_blocks(hub: Hub) -> None:
    cleaned: list[int] = []

    def task(i: int) -> None:
        try:
            sleep(10)
        finally:
            cleaned.append(i)

    tasks = [spawn(task, i) for i in range(5)]
    sleep(0.01)
    not_started = Greenlet(task, 99)
    not_started.start()
    t0 = now()
    killall([*tasks, not_started])
    assert now() - t0 < 1
    assert sorted(cleaned) == [0, 1, 2, 3, 4]  # 99 never ran
    assert all(t.dead and isinstance(t.value, GreenletExit) for t in [*tasks, not_started])
    assert hub.statistics().timers == 0


def test_killall_with_exception_and_no_block() -> None:
    tasks = [spawn(sleep, 10) for _ in range(3)]
    for t in tasks:
        t.report_errors = False
    sleep(0)
    killall(tasks, Cancelled, block=False)
    assert not any(t.dead for t in tasks)
    joinall(tasks)
    assert all(isinstance(t.exception, Cancelled) for t in tasks)


def test_iwait_yields_in_completion_order() -> None:
    events = [Event() for _ in range(3)]

    def setter() -> None:
        for i in (2, 0, 1):
            events[i].set()
            sleep(0)

    spawn(setter)
    assert list(iwait(events)) == [events[2], events[0], events[1]]

    tasks = [spawn(sleep, d) for d in (0.06, 0.02, 0.04)]
    assert list(iwait(tasks)) == [tasks[1], tasks[2], tasks[0]]


def test_iwait_timeout_and_count(corun_hub: Hub, virtual_clock: VirtualClock) -> None:
    hub = corun_hub
    tasks = [spawn(sleep, d) for d in (0.01, 10, 0.02)]
    assert list(iwait(tasks, timeout=0.2)) == [tasks[0], tasks[2]]
    assert virtual_clock.elapsed == pytest.approx(0.2)
    assert not any(t._links for t in tasks)
    assert list(iwait(tasks, count=1)) == [tasks[0]]
    assert list(iwait(tasks, count=0)) == []
    killall(tasks)
    assert hub.statistics().timers == 0


def test_iwait_mixes_tasks_and_events() -> None:
    ev = Event()
    g = spawn(sleep, 0.02)
    spawn_later(0.05, ev.set)
    assert list(iwait([ev, g])) == [g, ev]


def test_wait_with_objects_timeout_and_count(virtual_clock: VirtualClock) -> None:
    tasks = [spawn(sleep, d) for d in (0.01, 10, 0.02)]
    assert wait(tasks, timeout=0.2) == [tasks[0], tasks[2]]
    assert virtual_clock.elapsed == pytest.approx(0.2)
    assert wait(tasks, count=1) == [tasks[0]]
    killall(tasks)


def test_wait_without_objects_runs_until_no_work_left() -> None:
    tasks = [spawn(sleep, 0.01 * i) for i in range(5)]
    tasks.append(spawn_later(0.05, returns, 1))
    assert wait() is True
    assert all(t.dead for t in tasks)


def test_wait_without_objects_and_timeout_returns_early_when_idle() -> None:
    spawn(sleep, 0.01)
    t0 = now()
    assert wait(timeout=1.5) is True
    assert now() - t0 < 1


def test_wait_without_objects_from_a_spawned_task_returns_to_that_task() -> None:
    spawn(sleep, 0.01)
    waiter = spawn(wait, None, 1.5)
    t0 = now()
    waiter.join()
    assert waiter.value is True
    assert now() - t0 < 1


def test_wait_without_objects_times_out_when_work_remains() -> None:
    g = spawn(sleep, 10)
    t0 = now()
    assert wait(timeout=0.05) is False
    assert now() - t0 < 1
    g.kill()


# -- contextvars ------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_contextvars_copied_at_spawn_and_do_not_leak() -> None:
    seen: dict[str, list[str]] = {}

    def child(name: str) -> None:
        seen[name] = [request_id.get()]
        request_id.set(f"changed-by-{name}")
        sleep(0.01)
        seen[name].append(request_id.get())

    request_id.set("at-spawn")
    a = spawn(child, "a")
    b = spawn(child, "b")
    request_id.set("after-spawn")
    joinall([a, b])
    assert seen == {
        "a": ["at-spawn", "changed-by-a"],
        "b": ["at-spawn", "changed-by-b"],
    }
    assert request_id.get() == "after-spawn"


def test_contextvars_follow_nested_spawn() -> None:
    def grandchild() -> str:
        return request_id.get()

    def child() -> str:
        request_id.set("from-child")
        return spawn(grandchild).get()

    request_id.set("root")
    assert spawn(child).get() == "from-child"
    assert request_id.get() == "root"


# -- threads ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["join", "kill", "get"])
def test_join_or_kill_from_another_thread_raises(action: str) -> None:
    g = spawn(sleep, 10)
    g.name = "owned-by-main"
    sleep(0)
    exc = run_in_thread(lambda: getattr(g, action)())
    assert isinstance(exc, RuntimeError)
    assert "owned-by-main" in str(exc) and "thread" in str(exc)
    assert not g.dead
    g.kill()
    assert g.dead


def test_a_finished_task_drops_its_function_and_arguments() -> None:
    import weakref

    class Resource:
        def use(self, n: int) -> int:
            return n

    res = Resource()
    ref = weakref.ref(res)
    g = spawn(res.use, 3)
    g.join()
    assert g.value == 3
    del res
    gc.collect()
    assert ref() is None  # g still referenced, the bound method gone
    assert "dead" in repr(g)


def test_the_hub_counts_live_tasks(hub: Hub) -> None:
    test = hub.statistics().live_tasks  # the test's own task
    assert test == 1
    ev = corun.Event()
    waiting = [corun.spawn(ev.wait) for _ in range(3)]
    later = corun.spawn_later(30, print)
    failing = corun.spawn(lambda: 1 / 0)
    failing.report_errors = False
    assert hub.statistics().live_tasks == test + 5
    corun.sleep(0)
    assert hub.statistics().live_tasks == test + 4  # the failed one is done
    later.kill()  # never ran
    ev.set()
    corun.joinall(waiting)
    assert hub.statistics().live_tasks == test
    Greenlet(print)  # made, never started: not live
    assert hub.statistics().live_tasks == test
