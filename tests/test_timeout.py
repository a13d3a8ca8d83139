"""Timeout: deadlines for a block of code in one task, and with_timeout.

Every test runs on a virtual clock: timeouts are about time, and there they
take none, and their elapsed times are exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from corun import Event, Timeout, sleep, spawn, with_timeout
from corun.hub import Hub

from .conftest import now

pytestmark = pytest.mark.corun(clock="virtual")


def test_context_manager_raises_itself_when_time_is_up(hub: Hub) -> None:
    reached: list[str] = []
    t0 = now()
    with pytest.raises(Timeout) as info:
        with Timeout(0.05) as t:
            sleep(5)
            reached.append("after sleep")
    elapsed = now() - t0
    assert info.value is t
    assert 0.04 <= elapsed < 1
    assert reached == []
    assert not t.pending
    assert hub.statistics().timers == 0


def test_context_manager_does_nothing_when_block_finishes_in_time(hub: Hub) -> None:
    with Timeout(0.5) as t:
        assert t.pending
        sleep(0.01)
    assert not t.pending
    assert hub.statistics().timers == 0
    sleep(0.02)  # nothing arrives later


def test_start_new_cancel_and_pending(hub: Hub) -> None:
    t = Timeout.start_new(0.05)
    assert isinstance(t, Timeout)
    assert t.pending
    t.cancel()
    assert not t.pending
    assert hub.statistics().timers == 0
    sleep(0.1)  # cancelled: does not fire
    t.cancel()  # a second cancel is a no-op

    fired = Timeout.start_new(0.02)
    with pytest.raises(Timeout) as info:
        sleep(1)
    assert info.value is fired
    assert not fired.pending


def test_start_new_accepts_an_existing_timeout() -> None:
    existing = Timeout(0.5)
    t = Timeout.start_new(existing)
    assert t is existing and t.pending
    assert Timeout.start_new(existing) is existing  # already running: left alone
    t.cancel()


def test_start_twice_is_an_error() -> None:
    t = Timeout(1)
    t.start()
    with pytest.raises(RuntimeError, match="already started"):
        t.start()
    t.cancel()


def test_timeout_can_be_restarted_after_it_fired() -> None:
    t = Timeout(0.02)
    for _ in range(2):
        with pytest.raises(Timeout) as info:
            with t:
                sleep(1)
        assert info.value is t


class Slow(Exception):
    pass


def test_custom_exception_class() -> None:
    t0 = now()
    with pytest.raises(Slow):
        with Timeout(0.03, Slow):
            sleep(5)
    assert now() - t0 < 1


def test_custom_exception_instance_is_raised_as_is() -> None:
    exc = Slow("took too long")
    with pytest.raises(Slow) as info:
        with Timeout(0.03, exc) as t:
            sleep(5)
    assert info.value is exc
    assert "took too long" in str(t)


def test_false_exception_leaves_with_block_silently() -> None:
    reached: list[str] = []
    t0 = now()
    with Timeout(0.03, False):
        sleep(5)
        reached.append("inside")
    reached.append("after")
    assert reached == ["after"]
    assert now() - t0 < 1


def test_false_exception_does_not_swallow_other_timeouts() -> None:
    with pytest.raises(Timeout) as info:
        with Timeout(0.03) as outer:
            with Timeout(5, False):
                sleep(5)
    assert info.value is outer


def test_nested_inner_fires_first() -> None:
    with Timeout(5) as outer:
        with pytest.raises(Timeout) as info:
            with Timeout(0.03) as inner:
                sleep(5)
        assert info.value is inner
        assert outer.pending
        sleep(0.01)  # the outer deadline still stands and has not fired
    assert not outer.pending


def test_nested_outer_fires_first(hub: Hub) -> None:
    with pytest.raises(Timeout) as info:
        with Timeout(0.03) as outer:
            with Timeout(5) as inner:
                sleep(5)
    assert info.value is outer
    assert not inner.pending
    assert hub.statistics().timers == 0


def test_except_exception_does_not_catch_it() -> None:
    caught: list[BaseException] = []
    with pytest.raises(Timeout):
        with Timeout(0.03):
            try:
                sleep(5)
            except Exception as exc:  # the mistake Timeout is designed to survive
                caught.append(exc)
    assert caught == []
    assert not issubclass(Timeout, Exception)


def test_timeout_interrupts_event_wait_and_leaves_no_waiter() -> None:
    ev = Event()
    with pytest.raises(Timeout):
        with Timeout(0.03):
            ev.wait()
    assert ev.statistics().waiters == 0


def test_timeout_in_a_task_raises_in_that_task_only() -> None:
    def task() -> str:
        try:
            with Timeout(0.03):
                sleep(5)
        except Timeout:
            return "timed out"
        return "not timed out"

    tasks = [spawn(task) for _ in range(3)]
    sleep(0.1)  # the main task is not interrupted
    assert [t.get() for t in tasks] == ["timed out"] * 3


def test_timeout_of_finished_task_does_not_fire_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    def task() -> str:
        Timeout.start_new(0.03)  # never cancelled
        return "done"

    g = spawn(task)
    assert g.get() == "done"
    sleep(0.1)  # well past the deadline
    assert g.successful() and g.value == "done"
    assert capsys.readouterr().err == ""
    assert spawn(lambda: 1).get() == 1


def test_seconds_none_never_fires(hub: Hub) -> None:
    with Timeout(None) as t:
        assert not t.pending
        sleep(0.05)
    t2 = Timeout.start_new(None)
    assert not t2.pending
    assert hub.statistics().timers == 0
    sleep(0.02)
    assert str(t2) == ""


@pytest.mark.parametrize("bad", ["1", [1], object()])
def test_non_number_seconds_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="seconds"):
        Timeout(bad)


def test_str_and_repr() -> None:
    assert str(Timeout(1)) == "1 second"
    assert str(Timeout(2.5)) == "2.5 seconds"
    t = Timeout(3)
    t.start()
    assert "pending" in repr(t) and "3" in repr(t)
    t.cancel()
    assert "pending" not in repr(t)


def test_close_is_cancel() -> None:
    t = Timeout.start_new(0.02)
    t.close()
    assert not t.pending
    sleep(0.05)


# -- with_timeout -----------------------------------------------------------


def slow_add(a: int, b: int, delay: float = 0) -> int:
    sleep(delay)
    return a + b


def test_with_timeout_returns_result_in_time(hub: Hub) -> None:
    assert with_timeout(1, slow_add, 1, 2, delay=0.01) == 3
    assert hub.statistics().timers == 0


def test_with_timeout_raises_when_late() -> None:
    t0 = now()
    with pytest.raises(Timeout):
        with_timeout(0.03, slow_add, 1, 2, delay=5)
    assert now() - t0 < 1


def test_with_timeout_timeout_value() -> None:
    assert with_timeout(0.03, slow_add, 1, 2, delay=5, timeout_value="late") == "late"
    assert with_timeout(0.03, slow_add, 1, 2, delay=5, timeout_value=None) is None


def test_with_timeout_passes_other_timeouts_through() -> None:
    def own_deadline() -> None:
        with Timeout(0.01):
            sleep(5)

    with pytest.raises(Timeout):
        with_timeout(5, own_deadline, timeout_value="not this")


def test_with_timeout_propagates_function_errors() -> None:
    def bad() -> None:
        raise Slow("own error")

    with pytest.raises(Slow, match="own error"):
        with_timeout(1, bad, timeout_value=0)
