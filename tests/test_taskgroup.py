"""TaskGroup: children cannot outlive the block; one failure cancels them all."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from corun import Event, Greenlet, GreenletExit, TaskGroup, Timeout, sleep, spawn
from corun.hub import Hub

from .conftest import now

if sys.version_info >= (3, 11):
    GroupError = ExceptionGroup  # noqa: F821 - builtin on 3.11+
    BaseGroupError = BaseExceptionGroup  # noqa: F821
else:
    from exceptiongroup import BaseExceptionGroup as BaseGroupError
    from exceptiongroup import ExceptionGroup as GroupError


pytestmark = pytest.mark.corun(clock="virtual")


def double_after(x: int, delay: float) -> int:
    sleep(delay)
    return x * 2


def fail_after(delay: float, exc: BaseException) -> None:
    sleep(delay)
    raise exc


def sleeper(log: list[str], name: str, seconds: float = 10) -> None:
    try:
        sleep(seconds)
    finally:
        log.append(name)


def test_exit_waits_for_every_child_and_values_are_kept(hub: Hub) -> None:
    t0 = now()
    with TaskGroup() as tg:
        tasks = [tg.spawn(double_after, i, 0.05) for i in range(10)]
        assert all(not t.dead for t in tasks)
    elapsed = now() - t0
    assert all(t.dead for t in tasks)
    assert [t.value for t in tasks] == [i * 2 for i in range(10)]
    assert 0.04 <= elapsed < 1  # concurrent, not 10 x 0.05
    assert tg.children == frozenset()
    assert hub.statistics().timers == 0


def test_empty_group_and_finished_children() -> None:
    with TaskGroup():
        pass
    with TaskGroup() as tg:
        g = tg.spawn(lambda: "quick")
        sleep(0.01)
        assert g.dead
    assert g.value == "quick"


def test_spawn_passes_arguments_and_returns_a_task() -> None:
    with TaskGroup() as tg:
        g = tg.spawn(lambda a, b=1: a - b, 10, b=3)
        assert isinstance(g, Greenlet)
        assert g in tg.children
    assert g.value == 7


def test_failing_child_cancels_siblings_and_interrupts_body(capsys: pytest.CaptureFixture[str]) -> None:
    cleaned: list[str] = []
    err = ValueError("child failed")
    body_after_sleep: list[bool] = []
    t0 = now()
    with pytest.raises(GroupError) as info:
        with TaskGroup() as tg:
            siblings = [tg.spawn(sleeper, cleaned, f"s{i}") for i in range(3)]
            bad = tg.spawn(fail_after, 0.05, err)
            sleep(10)
            body_after_sleep.append(True)
    elapsed = now() - t0
    assert elapsed < 1
    assert body_after_sleep == []
    assert info.value.exceptions == (err,)
    assert sorted(cleaned) == ["s0", "s1", "s2"]
    assert all(s.dead and isinstance(s.value, GreenletExit) for s in siblings)
    assert bad.exception is err
    # The group raises the failure; it is not also printed as unhandled.
    assert capsys.readouterr().err == ""


def test_failure_while_exit_waits(capsys: pytest.CaptureFixture[str]) -> None:
    cleaned: list[str] = []
    err = KeyError("late")
    t0 = now()
    with pytest.raises(GroupError) as info:
        with TaskGroup() as tg:
            tg.spawn(sleeper, cleaned, "a")
            tg.spawn(fail_after, 0.05, err)
    assert now() - t0 < 1
    assert info.value.exceptions == (err,)
    assert cleaned == ["a"]
    assert capsys.readouterr().err == ""


def test_two_failing_children_are_both_in_the_group() -> None:
    e1, e2 = ValueError("one"), TypeError("two")
    with pytest.raises(GroupError) as info:
        with TaskGroup() as tg:
            tg.spawn(fail_after, 0.02, e1)
            tg.spawn(fail_after, 0.02, e2)
    assert set(map(id, info.value.exceptions)) == {id(e1), id(e2)}


def test_body_exception_cancels_children_and_is_in_the_group() -> None:
    cleaned: list[str] = []
    err = RuntimeError("body failed")
    t0 = now()
    with pytest.raises(GroupError) as info:
        with TaskGroup() as tg:
            children = [tg.spawn(sleeper, cleaned, f"c{i}") for i in range(3)]
            sleep(0.01)
            raise err
    assert now() - t0 < 1
    assert info.value.exceptions == (err,)
    assert sorted(cleaned) == ["c0", "c1", "c2"]
    assert all(c.dead for c in children)


def test_body_exception_and_child_failure_are_both_in_the_group() -> None:
    body_err = RuntimeError("body")
    child_err = ValueError("child")

    def fail_in_finally() -> None:
        try:
            sleep(10)
        finally:
            raise child_err

    with pytest.raises(GroupError) as info:
        with TaskGroup() as tg:
            tg.spawn(fail_in_finally)
            sleep(0)
            raise body_err
    assert info.value.exceptions == (body_err, child_err)


def test_timeout_around_group_cancels_children_and_propagates_itself(hub: Hub) -> None:
    cleaned: list[str] = []
    t0 = now()
    with pytest.raises(Timeout) as info:
        with Timeout(0.05) as deadline:
            with TaskGroup() as tg:
                children = [tg.spawn(sleeper, cleaned, f"c{i}") for i in range(3)]
                sleep(10)
    assert now() - t0 < 1
    assert info.value is deadline
    assert sorted(cleaned) == ["c0", "c1", "c2"]
    assert all(c.dead for c in children)
    assert hub.statistics().timers == 0


def test_timeout_while_group_waits_on_exit() -> None:
    cleaned: list[str] = []
    t0 = now()
    with pytest.raises(Timeout) as info:
        with Timeout(0.05) as deadline:
            with TaskGroup() as tg:
                tg.spawn(sleeper, cleaned, "a")
                tg.spawn(sleeper, cleaned, "b")
    assert now() - t0 < 1
    assert info.value is deadline
    assert sorted(cleaned) == ["a", "b"]
    with pytest.raises(RuntimeError, match="no task may outlive its group"):
        tg.spawn(sleep, 0)


def test_spawn_after_exit_is_an_error() -> None:
    with TaskGroup() as tg:
        tg.spawn(sleep, 0)
    with pytest.raises(RuntimeError, match="no task may outlive its group"):
        tg.spawn(sleep, 0)


def test_spawn_before_enter_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="entered"):
        TaskGroup().spawn(sleep, 0)


def test_group_cannot_be_entered_twice() -> None:
    tg = TaskGroup()
    with tg:
        pass
    with pytest.raises(RuntimeError, match="already entered"):
        with tg:
            pass


def test_child_spawns_more_children_into_the_same_group() -> None:
    done: list[int] = []

    def parent(tg: TaskGroup, depth: int) -> None:
        sleep(0.01)
        if depth < 3:
            tg.spawn(parent, tg, depth + 1)
            tg.spawn(parent, tg, depth + 1)
        done.append(depth)

    with TaskGroup() as tg:
        tg.spawn(parent, tg, 0)
    # Exit waited for children spawned after the body had finished too.
    assert sorted(done) == [0] + [1] * 2 + [2] * 4 + [3] * 8


def test_child_spawned_after_a_failure_is_cancelled() -> None:
    # A sibling that runs after the group started cancelling must not be able
    # to start new work the group would then wait for.
    cleaned: list[str] = []
    t0 = now()

    def late_spawner(tg: TaskGroup, failing: Greenlet[Any]) -> None:
        failing.join()  # resumes right after the failure, before its own kill
        tg.spawn(sleeper, cleaned, "late", 5)
        sleep(5)

    with pytest.raises(GroupError):
        with TaskGroup() as tg:
            bad = tg.spawn(fail_after, 0.02, ValueError("x"))
            tg.spawn(late_spawner, tg, bad)
    assert now() - t0 < 1


def test_nested_groups_in_the_body() -> None:
    with TaskGroup() as outer:
        a = outer.spawn(double_after, 1, 0.02)
        with TaskGroup() as inner:
            b = inner.spawn(double_after, 2, 0.02)
        assert b.value == 4
    assert a.value == 2


def test_nested_group_failure_cancels_outer_children() -> None:
    cleaned: list[str] = []
    err = ValueError("deep")
    t0 = now()
    with pytest.raises(GroupError) as info:
        with TaskGroup() as outer:
            outer.spawn(sleeper, cleaned, "outer-child")
            with TaskGroup() as inner:
                inner.spawn(sleeper, cleaned, "inner-child")
                inner.spawn(fail_after, 0.02, err)
    assert now() - t0 < 1
    assert sorted(cleaned) == ["inner-child", "outer-child"]
    (nested,) = info.value.exceptions
    assert isinstance(nested, GroupError)
    assert nested.exceptions == (err,)


def test_group_inside_a_child_task() -> None:
    cleaned: list[str] = []
    err = OSError("in grandchild")

    def child() -> None:
        with TaskGroup() as inner:
            inner.spawn(sleeper, cleaned, "grandchild")
            inner.spawn(fail_after, 0.02, err)

    t0 = now()
    with pytest.raises(GroupError) as info:
        with TaskGroup() as outer:
            outer.spawn(sleeper, cleaned, "child")
            outer.spawn(child)
    assert now() - t0 < 1
    assert sorted(cleaned) == ["child", "grandchild"]
    (nested,) = info.value.exceptions
    assert isinstance(nested, GroupError) and nested.exceptions == (err,)


def test_outer_failure_cancels_body_inside_inner_group() -> None:
    cleaned: list[str] = []
    err = ValueError("outer child")
    with pytest.raises(GroupError) as info:
        with TaskGroup() as outer:
            outer.spawn(fail_after, 0.02, err)
            with TaskGroup() as inner:
                inner.spawn(sleeper, cleaned, "inner-child")
                sleep(10)
    assert info.value.exceptions == (err,)
    assert cleaned == ["inner-child"]


def test_cancel_kills_children_without_failure() -> None:
    cleaned: list[str] = []
    with TaskGroup() as tg:
        children = [tg.spawn(sleeper, cleaned, f"c{i}") for i in range(3)]
        sleep(0)
        tg.cancel()
    assert sorted(cleaned) == ["c0", "c1", "c2"]
    assert all(isinstance(c.value, GreenletExit) for c in children)


def test_killing_the_owner_cancels_the_children() -> None:
    cleaned: list[str] = []
    started = Event()

    def owner() -> None:
        with TaskGroup() as tg:
            tg.spawn(sleeper, cleaned, "child")
            started.set()
            sleep(10)

    g = spawn(owner)
    started.wait()
    t0 = now()
    g.kill()
    assert now() - t0 < 1
    assert cleaned == ["child"]
    assert isinstance(g.value, GreenletExit)


def test_base_exception_child_failure_gives_base_group() -> None:
    class Stop(BaseException):
        pass

    stop = Stop()
    with pytest.raises(BaseGroupError) as info:
        with TaskGroup() as tg:
            tg.spawn(fail_after, 0.01, stop)
    assert not isinstance(info.value, GroupError)
    assert info.value.exceptions == (stop,)
