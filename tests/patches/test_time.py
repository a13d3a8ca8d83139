"""The cooperative ``time.sleep``: checks its argument as the original does, suspends only its task."""

from __future__ import annotations

import time

import corun.patches.time as cotime
import pytest

import corun

from ..conftest import run_python


class Index:
    """An integer-like object: ``time.sleep`` takes it through ``__index__``."""

    def __index__(self) -> int:
        return 0


class FloatOnly:
    """Has ``__float__`` but no ``__index__``: ``time.sleep`` refuses it."""

    def __float__(self) -> float:
        return 0.0


def test_contract() -> None:
    assert cotime.__target__ == "time"
    assert cotime.__implements__ == ["sleep"]
    assert all(hasattr(cotime, name) for name in cotime.__implements__)


@pytest.mark.parametrize("bad", ["1", None, -1, -0.5, float("nan"), FloatOnly(), b"1", [1]])
def test_bad_arguments_fail_as_the_original_does(bad: object) -> None:
    with pytest.raises(Exception) as original:
        time.sleep(bad)  # type: ignore[arg-type]
    with pytest.raises(Exception) as ours:
        cotime.sleep(bad)  # type: ignore[arg-type]
    assert type(ours.value) is type(original.value)
    assert str(ours.value) == str(original.value)


@pytest.mark.parametrize("huge", [1e300, 2**70, float("inf")])
def test_too_large_is_an_overflow(huge: float) -> None:
    with pytest.raises(OverflowError):
        time.sleep(huge)
    with pytest.raises(OverflowError):
        cotime.sleep(huge)


@pytest.mark.parametrize("fine", [0, 0.0, -0.0, False, Index(), 0.001])
def test_accepts_what_the_original_accepts(fine: object) -> None:
    cotime.sleep(fine)  # type: ignore[arg-type]


def test_sleep_zero_lets_other_tasks_run() -> None:
    order: list[str] = []
    corun.spawn(order.append, "other")
    cotime.sleep(0)
    order.append("main")
    assert order == ["other", "main"]


def test_sleeps_about_as_long_as_asked() -> None:
    start = time.monotonic()
    cotime.sleep(0.2)
    elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 1.0


def test_ten_tasks_sleep_at_the_same_time() -> None:
    start = time.monotonic()
    tasks = [corun.spawn(cotime.sleep, 0.3) for _ in range(10)]
    corun.joinall(tasks, raise_error=True)
    elapsed = time.monotonic() - start
    assert 0.28 <= elapsed < 1.5  # one after the other would take 3 s


def test_other_tasks_run_while_one_sleeps() -> None:
    ticks: list[int] = []

    def ticker() -> None:
        for i in range(100):
            ticks.append(i)
            corun.sleep(0.01)

    task = corun.spawn(ticker)
    cotime.sleep(0.3)
    task.kill()
    assert len(ticks) >= 10


def test_patched_time_sleep_in_a_fresh_interpreter() -> None:
    proc = run_python(
        """
        import time
        import corun
        import corun.patches.time as cotime

        time.sleep = cotime.sleep
        start = time.monotonic()
        corun.joinall([corun.spawn(time.sleep, 0.3) for _ in range(10)], raise_error=True)
        print(f"elapsed {time.monotonic() - start:.3f}")
        """
    )
    assert proc.returncode == 0, proc.stderr
    elapsed = float(proc.stdout.split()[-1])
    assert 0.28 <= elapsed < 1.5  # one after the other would take 3 s
