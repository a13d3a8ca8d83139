"""The blocking monitor: one real OS thread per watched hub, probing how late the hub comes back.

Facts this module relies on:

- The only thing a blocked hub cannot do is run a callback.  So the monitor
  thread posts one (a *probe*, through ``run_callback_threadsafe``, which
  also wakes a hub idle in its poll) every quarter of the threshold, and
  the hub answers it by noting the time.  How long a probe waited is the
  loop's lag; a probe unanswered for longer than the threshold means the
  hub has not come back to its loop for that long: an *episode*.
- The hub knows nothing of this: it pays a slot increment per pass for its
  counts, whether watched or not, and the monitor reads them.
- An episode is reported once, when first seen, with the stack of whatever
  runs on the hub's thread at that moment (``_frames``); its end comes with
  the next answered probe, whose time is the hub's own, so the total
  duration is exact at the end and early by at most one tick at the start.
- A hub with no task, timer or fd wait has nobody waiting on it: a thread
  whose code simply runs (the main script before it spawns anything, a
  thread-pool worker between jobs) is not blocking anyone and is not reported.
- Reports are made in the monitor thread, never in the program: a failing
  listener or logging handler is logged (or dropped), never raised.
- After ``fork`` the child has no monitor thread; a watched hub gets a new
  one.  At interpreter exit the monitors stop first, so that the
  interpreter's own shutdown is never reported as a block.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _originals, _waiter
from .._hubstats import Distribution
from ..greenlet import Greenlet
from ..hub import Hub, get_hub
from . import _frames
from ._histogram import Histogram
from ._hubs import live_hubs

__all__ = [
    "DEFAULT_THRESHOLD",
    "BlockingReport",
    "Monitor",
    "add_listener",
    "enable",
    "in_monitor_thread",
    "parse_seconds",
    "remove_listener",
    "start",
    "stop",
    "watched_hubs",
]

DEFAULT_THRESHOLD = 0.1
# Probes per threshold: an episode is seen at most this fraction of it late.
TICKS_PER_THRESHOLD = 4

_monotonic = _originals.monotonic
# Reports go to the package's logger, "corun.monitor".
_LOGGER = __name__.rpartition(".")[0]


@dataclass
class BlockingReport:
    """One episode of a blocked hub, as given to listeners once it has ended."""

    task: str  # what ran on the hub's thread, in words: "task 'fetch-3'", "the main task"
    started: float  # when the hub last ran its loop before the episode (time.time())
    duration: float  # seconds the hub stayed away from its loop
    stack: str  # the stack of what ran, innermost last, when the episode was first seen
    thread: int  # the ident of the hub's OS thread


_listeners: list[Callable[[BlockingReport], object]] = []


def add_listener(func: Callable[[BlockingReport], object]) -> None:
    """Call ``func(report)`` once each episode has ended (it must not block).

    It is called in the monitor thread, or, for an episode that ended just
    before its monitor was stopped, in the thread that stopped it.
    """
    if func not in _listeners:
        _listeners.append(func)


def remove_listener(func: Callable[[BlockingReport], object]) -> None:
    """Stop calling ``func`` (a no-op if it was not registered)."""
    if func in _listeners:
        _listeners.remove(func)


# Threads the monitor and the dump run on: a hub made there is never watched.
_marks = _originals.thread_local()


def in_monitor_thread() -> bool:
    """Whether the calling thread is one of corun's monitor or dump threads."""
    return getattr(_marks, "monitor", False)


class _Probe:
    """A callback posted to the hub; the hub answers it with the time it ran."""

    __slots__ = ("ran", "saw_work", "sent")

    def __init__(self) -> None:
        self.sent = _monotonic()
        self.ran: float | None = None
        # Whether the hub had work while this probe waited past the threshold.
        self.saw_work = False

    def answer(self) -> None:
        self.ran = _monotonic()


class Monitor:
    """Watches one hub from a real OS thread: reports episodes, samples lag and task run time."""

    def __init__(self, hub: Hub, threshold: float) -> None:
        self.threshold = _checked(threshold)
        self.thread = hub.thread_ident
        self._hub = weakref.ref(hub)
        self.lag = Histogram()
        self.blocked = Histogram()
        self._stop = _originals.allocate_lock()
        self._stop.acquire()
        # Held during a tick, so that stop() from another thread never runs into one.
        self._ticking = _originals.allocate_lock()
        self.running = True
        self._probe: _Probe | None = None
        # When the hub was last known to be in its loop (or blocking nobody).
        self._alive: float | None = None
        self._last_tick = _monotonic()
        self._passes = 0  # the hub's passes when this thread last looked
        self._episode: BlockingReport | None = None
        self._episode_start = 0.0
        # Run time sampled per greenlet (weakly: a finished task is not kept), and its name.
        self._run_time: dict[Any, list[Any]] = {}
        _load_reporting()
        self.ident: int = _originals.start_new_thread(self._run, ())

    @property
    def interval(self) -> float:
        """Seconds between two probes."""
        return self.threshold / TICKS_PER_THRESHOLD

    def stop(self) -> None:
        """Stop watching; the thread ends within one interval.

        An episode whose end the hub has already answered is reported first:
        a program that ends right after a block still hears of its duration.
        """
        if not self.running:
            return
        self.running = False
        self._stop.release()
        if in_monitor_thread():
            return  # the monitor thread itself, inside a tick
        with self._ticking:
            probe = self._probe
            if probe is not None and probe.ran is not None and self._episode is not None:
                self._answered(probe)

    # -- what the hub shows in statistics() -------------------------------------------

    def loop_lag(self) -> Distribution:
        """How long the probes waited for the hub to run them."""
        return self.lag.summary()

    def task_run_time(self) -> tuple[tuple[str, float], ...]:
        """(name, seconds) of each live task seen running, sampled once per probe; longest first.

        The main task is ``(the main task)``, the hub's own work ``(the hub)``.
        """
        times: dict[str, float] = {}
        for ref, (name, seconds) in self._run_time.copy().items():
            g = ref()
            if g is None or getattr(g, "dead", False):
                continue
            times[name] = times.get(name, 0.0) + seconds
        return tuple(sorted(times.items(), key=lambda item: -item[1]))

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        _marks.monitor = True
        try:
            while not self._stop.acquire(True, self.interval):
                hub = self._hub()
                if hub is None or hub.destroyed or hub.monitor is not self:
                    break
                with self._ticking:
                    if not self.running:
                        break
                    self._tick(hub)
                del hub
        except BaseException as exc:  # the program must never hear of the monitor failing
            try:
                self._log("the monitor of %s stopped: %r", _hub_name(self.thread), exc)
            except BaseException:  # noqa: S110 - nowhere left to say it
                pass
        finally:
            self.running = False

    def _tick(self, hub: Hub) -> None:
        now = _monotonic()
        last, self._last_tick = self._last_tick, now
        passes = hub.counts.passes
        passes_before, self._passes = self._passes, passes
        top = _frames.thread_frame(self.thread)
        if top is None:  # the thread has ended
            self.stop()
            return
        polling = _frames.is_polling(hub, top)
        if not polling:
            self._sample(hub, top, min(now - last, 2 * self.interval))
        probe = self._probe
        if probe is not None and probe.ran is not None:
            self._answered(probe)
            probe = self._probe = None
        if probe is None:
            if not passes:
                return  # the loop has never run: there is no loop to come back to
            probe = self._probe = _Probe()
            if self._alive is None:
                self._alive = probe.sent
            hub.run_callback_threadsafe(probe.answer)
        if self._episode is not None:
            return
        assert self._alive is not None
        starved = now - last > self.threshold
        if now - self._alive < self.threshold and not starved:
            return
        if polling or not _has_work(hub):
            # Nobody waits on the hub, so nobody has been held up until now.
            self._alive = now
            return
        if starved and probe.sent >= last:
            # This thread could not run for a while, yet the probe it had sent
            # was answered.  If the loop has not gone on since (a pass or two),
            # a call held the GIL and has only just returned; if it has, this
            # thread was merely not scheduled.
            if passes - passes_before <= 2:
                self._report_seen_late(hub, top, last, now)
            return
        probe.saw_work = True
        self._begin(hub, top, now)

    def _answered(self, probe: _Probe) -> None:
        assert probe.ran is not None
        late = probe.ran - probe.sent
        # A probe that waited past the threshold on a hub with nothing to do
        # (a thread just running its own code) measured no loop lag.
        if probe.saw_work or late < self.threshold:
            self.lag.record(late)
        if self._episode is not None:
            self._end(self._episode, probe.ran)
        self._alive = probe.ran

    def _sample(self, hub: Hub, top: Any, elapsed: float) -> None:
        g, who = _frames.running_greenlet(hub, top)
        if g is None:
            return
        name = g.name if isinstance(g, Greenlet) else f"({who})"
        key = weakref.ref(g)
        entry = self._run_time.get(key)
        if entry is None:
            if len(self._run_time) > 4096:
                self._forget_finished()
            self._run_time[key] = [name, elapsed]
        else:
            entry[0] = name
            entry[1] += elapsed

    def _forget_finished(self) -> None:
        for ref in list(self._run_time):
            g = ref()
            if g is None or getattr(g, "dead", False):
                del self._run_time[ref]

    # -- episodes -----------------------------------------------------------------------

    def _begin(self, hub: Hub, top: Any, now: float) -> None:
        assert self._alive is not None
        _, who = _frames.running_greenlet(hub, top)
        so_far = now - self._alive
        report = BlockingReport(who, time.time() - so_far, so_far, _frames.stack_text(top), self.thread)
        self._episode = report
        self._episode_start = self._alive
        self._log(
            "%s has not run its loop for %.3f s: %s is running; its stack, innermost last:\n%s",
            _hub_name(self.thread),
            so_far,
            who,
            report.stack.rstrip("\n"),
        )

    def _report_seen_late(self, hub: Hub, top: Any, last: float, now: float) -> None:
        _, who = _frames.running_greenlet(hub, top)
        stack = _frames.stack_text(top)
        report = BlockingReport(who, time.time() - (now - last), now - last, stack, self.thread)
        self._log(
            "%s was blocked for %.3f s, seen only once it ended: a call held the GIL, "
            "so the monitor could not run either; %s runs now, its stack, innermost last:\n%s",
            _hub_name(self.thread),
            report.duration,
            who,
            report.stack.rstrip("\n"),
        )
        self._alive = now
        self._ended(report)

    def _end(self, report: BlockingReport, ran: float) -> None:
        self._episode = None
        report.duration = ran - self._episode_start
        self._log(
            "%s was blocked for %.3f s in all by %s",
            _hub_name(self.thread),
            report.duration,
            report.task,
        )
        self._ended(report)

    def _ended(self, report: BlockingReport) -> None:
        self.blocked.record(report.duration)
        for func in list(_listeners):
            try:
                func(report)
            except Exception:
                self._log("monitor listener %r failed", func, exc_info=True)

    def _log(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        logging = sys.modules["logging"]
        logging.getLogger(_LOGGER).warning(msg, *args, exc_info=exc_info)


def _checked(threshold: float) -> float:
    if not 0 < threshold < float("inf"):
        raise ValueError(f"the monitor's threshold must be a positive number of seconds, not {threshold!r}")
    return threshold


def _hub_name(thread: int) -> str:
    """How reports name a hub: by its thread."""
    main = sys.modules["threading"].main_thread().ident
    return "the hub of the main thread" if thread == main else f"the hub of thread {thread}"


def _has_work(hub: Hub) -> bool:
    """Whether anything waits on the hub: a task, a timer, an fd wait, a job of another thread."""
    if hub.counts.live_tasks or hub.io.waiting or hub.pending:
        return True
    return hub.statistics().timers > 0


def _load_reporting() -> None:
    """Import what reports need, in the thread that starts a monitor (never in the monitor thread).

    An import in the monitor thread could wait on the import lock of a
    module the blocked thread is importing.
    """
    import linecache  # noqa: F401
    import logging  # noqa: F401
    import threading  # noqa: F401
    import traceback  # noqa: F401


# -- turning it on ------------------------------------------------------------------------------

# The threshold every new hub is watched with (enable(), python -m corun --monitor); None: off.
_process_threshold: float | None = None
_atexit_registered = False


def watched_hubs() -> list[Hub]:
    """Every live hub of the process, watched or not."""
    return live_hubs()


def start(threshold: float = DEFAULT_THRESHOLD, *, hub: Hub | None = None) -> Monitor:
    """Watch the calling thread's hub (or ``hub``) from a real OS thread.

    Each time the hub stays away from its loop for longer than ``threshold``
    seconds, the ``corun.monitor`` logger gets a warning naming what runs
    and its stack, then one with the total duration, and the listeners get
    a ``BlockingReport``.  Watching an already watched hub changes its threshold.

    Returns:
        The hub's ``Monitor``.

    Raises:
        ValueError: ``threshold`` is not a positive number.
    """
    global _atexit_registered
    if hub is None:
        hub = get_hub()
    current = hub.monitor
    if isinstance(current, Monitor) and current.running:
        current.threshold = _checked(threshold)
        return current
    monitor = Monitor(hub, threshold)
    hub.monitor = monitor
    _waiter.wait_clock = _monotonic
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_stop_all)
    return monitor


def stop(hub: Hub | None = None) -> None:
    """Stop watching the calling thread's hub (or ``hub``); a no-op if it is not watched."""
    if hub is None:
        hub = get_hub()
    monitor = hub.monitor
    if isinstance(monitor, Monitor):
        monitor.stop()
        hub.monitor = None


def enable(threshold: float = DEFAULT_THRESHOLD) -> None:
    """Watch every hub of the process from now on: the calling thread's, and each one made later."""
    global _process_threshold
    _process_threshold = _checked(threshold)
    start(threshold)


def _stop_all() -> None:
    for hub in watched_hubs():
        monitor = hub.monitor
        if isinstance(monitor, Monitor):
            monitor.stop()


def parse_seconds(text: str, what: str) -> float:
    """A positive number of seconds written in ``text``.

    Raises:
        ValueError: naming ``what`` was given.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{what} must be a positive number of seconds, not {text!r}")
    return seconds


def _threshold_for_new_hub() -> float | None:
    if _process_threshold is not None:
        return _process_threshold
    text = os.environ.get("CORUN_MONITOR", "")
    if not text:
        return None
    try:
        return parse_seconds(text, "CORUN_MONITOR")
    except ValueError as exc:
        print(f"corun: {exc}; the monitor stays off", file=sys.stderr)
        return None


# Called by ``corun.monitor`` for each new hub, as are the other hooks below.
def _on_create(hub: Hub) -> None:
    if in_monitor_thread():
        return
    threshold = _threshold_for_new_hub()
    if threshold is not None:
        start(threshold, hub=hub)


def _on_destroy(hub: Hub) -> None:
    stop(hub)


def _after_fork_in_child(hub: Hub) -> None:
    monitor = hub.monitor
    if isinstance(monitor, Monitor):
        # Its thread stayed in the parent.
        hub.monitor = None
        start(monitor.threshold, hub=hub)
