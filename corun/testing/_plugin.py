"""The pytest plugin: a fresh hub per test, virtual time, leak checks, fail-on-block.

Registered through the ``pytest11`` entry point, so installing corun is
enough.  A test is left alone unless it asks: by the ``corun_hub`` or
``virtual_clock`` fixture, by the ``corun`` marker (on the test, its class
or module), or, for the blocking check only, by ``--corun-fail-on-block``.

A test that asks runs on a new hub of its own, in a corun task (its
fixtures run in the main task), and fails at teardown if it left a task, a
timer or an fd registration on that hub.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from corun.hub import Hub, get_hub

from ._clock import VirtualClock
from ._hubs import describe_leaks, fresh_hub

__all__ = ["corun_hub", "virtual_clock"]

_MARKER_HELP = (
    "corun(clock='real'|'virtual', autojump_threshold=0.0, fail_on_block=None, check_leaks=True): "
    "run the test in a corun task on a hub of its own, on a virtual clock if asked; "
    "fail it if the hub was blocked longer than fail_on_block seconds"
)
_MARKER_KEYS = frozenset({"clock", "autojump_threshold", "fail_on_block", "check_leaks"})

# The hub a test runs on, once its corun_hub fixture made one.
_HUB = pytest.StashKey[Hub]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--corun-fail-on-block``."""
    group = parser.getgroup("corun")
    group.addoption(
        "--corun-fail-on-block",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fail each test during which a corun hub was blocked longer than SECONDS (a task that "
        "did not yield), naming the task and the line it was blocked in",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``corun`` marker, so that ``--strict-markers`` accepts it."""
    config.addinivalue_line("markers", _MARKER_HELP)


def _marker_options(node: pytest.Item) -> dict[str, Any]:
    """The keywords of the ``corun`` markers on ``node`` and its parents, the closest winning."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("corun"))):
        if marker.args:
            raise pytest.UsageError(f"{node.nodeid}: corun() takes keywords only, got {marker.args!r}")
        unknown = set(marker.kwargs) - _MARKER_KEYS
        if unknown:
            raise pytest.UsageError(
                f"{node.nodeid}: corun() got unknown keyword(s) {sorted(unknown)}; "
                f"it takes {sorted(_MARKER_KEYS)}"
            )
        options.update(marker.kwargs)
    clock = options.get("clock", "real")
    if clock not in ("real", "virtual"):
        raise pytest.UsageError(f"{node.nodeid}: corun(clock=...) is 'real' or 'virtual', not {clock!r}")
    return options


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test marked ``corun`` its hub without it naming the fixture.

    Added after the fixtures the test already uses, autouse ones included,
    so that none of those replaces the thread's hub after this one is made.
    """
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker("corun") is not None:
            if "corun_hub" not in item.fixturenames:
                item.fixturenames.append("corun_hub")


@pytest.fixture
def corun_hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """A new hub for this test; the test body runs in a task on it, and it must be left empty.

    At teardown, a task still alive, a timer still pending or an fd still
    registered fails the test, naming each (``corun(check_leaks=False)``
    turns that off).
    """
    options = _marker_options(request.node)
    clock = None
    if options.get("clock") == "virtual" or "virtual_clock" in request.fixturenames:
        clock = VirtualClock(options.get("autojump_threshold", 0.0))
    with fresh_hub(clock) as hub:
        request.node.stash[_HUB] = hub
        yield hub
        del request.node.stash[_HUB]
        # A pass or two for what the test's end set going (links, finally blocks of ended tasks).
        for _ in range(2):
            _run_one_pass(hub)
        leaks = describe_leaks(hub) if options.get("check_leaks", True) else []
        if leaks:
            pytest.fail("the test left work on its corun hub:\n  " + "\n  ".join(leaks), pytrace=False)


def _run_one_pass(hub: Hub) -> None:
    """Let ``hub`` take one pass of its loop, from the main task."""
    from corun.hub import sleep

    if get_hub() is hub:
        sleep(0)


@pytest.fixture
def virtual_clock(corun_hub: Hub) -> VirtualClock:
    """The virtual clock of this test's hub: waits take no real time; ``advance()`` steps by hand."""
    clock = corun_hub.clock
    assert isinstance(clock, VirtualClock)
    return clock


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the body of a test that has a corun hub in a task on that hub."""
    hub = pyfuncitem.stash.get(_HUB, None)
    if hub is None:
        return None
    func = pyfuncitem.obj
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    raised: list[BaseException] = []

    def body() -> None:
        try:
            func(**args)
        except BaseException as exc:  # re-raised in the main task, where pytest reports it
            raised.append(exc)

    from corun._waiter import throw_into
    from corun.greenlet import Greenlet
    from corun.hub import LoopExit

    task = Greenlet(body)
    task.name = f"test {pyfuncitem.name}"
    task.start()
    while True:
        try:
            task.join()
            break
        except LoopExit as exc:
            if task.dead:
                break
            # The hub tells the main task that nothing can wake anyone; the
            # test waits in its own task, so that is where it must hear it.
            hub.run_callback(throw_into, task, exc)
    if raised:
        raise raised[0]
    return True


# What the blocking monitor saw while a test ran, described, for its report.
_BLOCKED = pytest.StashKey[list[str]]()


# Old-style wrappers: they work with every pytest and pluggy, and an entry
# point plugin that failed to load would break every test session on the machine.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Watch the hub for blocking while the test runs, if asked."""
    limit = _marker_options(item).get("fail_on_block", item.config.getoption("corun_fail_on_block"))
    if limit is None:
        yield
        return
    from corun import _waiter, monitor

    hub = item.stash.get(_HUB, None) or get_hub()
    blocked = item.stash[_BLOCKED] = []

    def heard(report: monitor.BlockingReport) -> None:
        if report.thread == hub.thread_ident and report.duration > limit:
            blocked.append(_describe_block(report, limit))

    was_watched = hub.monitor is not None
    # Starting a monitor times every wait from then on; the process is left as it was found.
    wait_clock = _waiter.wait_clock
    monitor.add_listener(heard)
    monitor.start(limit, hub=hub)
    try:
        yield
    finally:
        if not was_watched:
            monitor.stop(hub)
            _waiter.wait_clock = wait_clock
        monitor.remove_listener(heard)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Fail a test that passed but during which the hub was blocked too long."""
    outcome = yield
    blocked = item.stash.get(_BLOCKED, None)
    if call.when != "call" or not blocked:
        return
    report = outcome.get_result()
    if report.passed:
        report.outcome = "failed"
        report.longrepr = "\n".join(blocked)


def _describe_block(report: Any, limit: float) -> str:
    """One blocking episode, in words, with the line that blocked."""
    stack = report.stack.rstrip("\n").splitlines()
    where = "\n".join(stack[-2:]) if stack else "(no stack)"
    return (
        f"the corun hub was blocked for {report.duration:.3f} s (more than {limit} s) by {report.task}; "
        f"it was blocked at:\n{where}"
    )
