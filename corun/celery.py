"""A Celery worker pool that runs each task as a corun task: ``celery -A proj worker -P custom``.

Select it with ``CELERY_CUSTOM_WORKER_POOL=corun.celery:TaskPool celery -A proj
worker -P custom -c 100`` (or ``python -m corun -m celery ...``); needs the
``corun[celery]`` extra.

Facts this module relies on (Celery 5.x, kombu 5.x):

- ``celery``'s command line looks for ``-P``/``--pool`` before it imports
  its worker machinery and, for ``-P custom``, imports the class named by
  ``CELERY_CUSTOM_WORKER_POOL`` at once.  Importing this module is therefore
  the moment to patch: the application (``-A proj``), kombu's transports
  and the result backends are imported afterwards and find cooperative
  sockets, locks and threads.
- kombu and Celery ask ``kombu.utils.compat._detect_environment()`` whether
  the process is green; anything but ``"default"`` makes the worker drain
  the broker in its own blocking loop (no kombu event loop, whose epoll
  would be captured at import and block the hub), poll with the patched
  ``select``, and pick a result drainer by that name.  That function only
  knows gevent and eventlet, so it is wrapped to answer ``"corun"`` once
  the stdlib is patched, and a drainer of that name is registered: one task
  drains the result backend for every task waiting on a result, so many
  tasks waiting at once share one connection.
- A pool is told a task's hard and soft time limits in ``on_apply`` and
  reports an expired one through ``timeout_callback(soft, seconds)``; the
  request then logs it, and for the hard limit stores ``TimeLimitExceeded``
  as the task's result.  Both limits are timers on the hub that raise an
  exception where the task waits, so a task blocked in a socket, a lock or
  a sleep is reached too; a task that computes without ever waiting is not
  (no greenlet pool can interrupt it).
- ``revoke(terminate=True)`` calls ``terminate_job(pid)`` with the pid the
  pool gave the request through ``accept_callback``: the id of the task's
  greenlet here.  The request itself then reports the task revoked.
- Warm shutdown stops the consumer and calls ``stop()`` (here: wait for the
  running tasks); cold shutdown calls ``terminate()`` (here: kill them).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

from corun import monkey

if importlib.util.find_spec("celery") is None:  # say so before patching the process
    raise ImportError("corun.celery needs Celery 5: pip install 'corun[celery]'")

# What ``celery``'s command line has imported before it imports this module
# and which keeps an original: each is rebound below or harmless.
_EARLY_CAPTURES = {
    # deliberately the original os.write (eventlet's hub must not call a green one)
    "celery": (),
    "billiard.compat": (("__write__", "os", "write"),),
    "kombu.utils.functional": (("sleep", "time", "sleep"),),  # retry_over_time's back-off
    "cffi.api": (("allocate_lock", "threading", "_allocate_lock"),),
    "cffi.lock": (("allocate_lock", "threading", "_allocate_lock"),),
    "cffi.model": (("allocate_lock", "threading", "_allocate_lock"),),
}


def _patch_early() -> None:
    """``patch_all()`` before Celery's worker machinery is imported, and rebind what came before it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", monkey.MonkeyPatchWarning)
        monkey.patch_all()
    for module_name, rebinds in _EARLY_CAPTURES.items():
        module = sys.modules.get(module_name)
        for attr, source, name in rebinds if module is not None else ():
            if getattr(module, attr, None) is monkey.get_original(source, name):
                setattr(module, attr, getattr(sys.modules[source], name))
    for warning in caught:
        # Re-raise what this module does not know to be fixed or harmless.
        lines = str(warning.message).splitlines()
        unknown = [
            line
            for line in lines
            if line.startswith("  module ") and line.split("'")[1] not in _EARLY_CAPTURES
        ]
        if unknown or not issubclass(warning.category, monkey.MonkeyPatchWarning):
            kept = [line for line in lines if not line.startswith("  module ") or line in unknown]
            warnings.warn("\n".join(kept), warning.category, stacklevel=3)


# Before anything below imports more of Celery, kombu or billiard: they
# capture socket, threading and select objects at import.
_patch_early()

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from billiard.exceptions import SoftTimeLimitExceeded  # noqa: E402
from celery.backends.asynchronous import greenletDrainer, register_drainer  # noqa: E402
from celery.concurrency import base  # noqa: E402
from kombu.asynchronous import timer as _kombu_timer  # noqa: E402
from kombu.utils import compat as _kombu_compat  # noqa: E402

from .event import Event  # noqa: E402
from .greenlet import Greenlet, GreenletExit, getcurrent, joinall  # noqa: E402
from .hub import TimerHandle, get_hub, sleep  # noqa: E402
from .pool import Pool  # noqa: E402

__all__ = ["ENVIRONMENT", "ResultDrainer", "TaskPool", "Timer"]

#: What kombu's environment detection answers in a process patched by corun.
ENVIRONMENT = "corun"

# Modules that copied ``_detect_environment`` with ``from ... import`` and may
# have been imported before this module.
_DETECTION_USERS = ("kombu.transport", "kombu.transport.mongodb", "celery.worker.consumer.consumer")


def _install_environment_detection() -> None:
    """Make kombu and Celery see a process patched by corun as green, as they see gevent's."""
    original = _kombu_compat._detect_environment
    if getattr(original, "_corun", False):
        return

    def _detect_environment() -> str:
        if monkey.is_module_patched("socket"):
            return ENVIRONMENT
        return str(original())

    _detect_environment._corun = True  # type: ignore[attr-defined]
    _kombu_compat._detect_environment = _detect_environment
    _kombu_compat._environment = None  # detect_environment() caches its first answer
    for name in _DETECTION_USERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "_detect_environment", None) is original:
            module._detect_environment = _detect_environment  # type: ignore[attr-defined]


@register_drainer(ENVIRONMENT)
class ResultDrainer(greenletDrainer):
    """Drains the result backend in one task for every task waiting on a result."""

    def spawn(self, func: Callable[[], Any]) -> Greenlet[Any]:
        """Start ``func`` as a task and let it run up to its first wait."""
        task: Greenlet[Any] = Greenlet.spawn(func)
        sleep(0)
        return task

    def _event(self) -> Event:
        return Event()


_install_environment_detection()


class _Scheduled:
    """One entry of ``Timer``: a hub timer that runs the entry in a task of its own when due."""

    __slots__ = ("entry", "eta", "handle", "priority", "timer")

    def __init__(self, timer: Timer, eta: float, priority: int, entry: Any) -> None:
        self.timer = timer
        self.eta = eta
        self.priority = priority
        self.entry = entry
        self.handle: TimerHandle = get_hub().call_later(max(eta - time.monotonic(), 0.0), self._fire)

    def _fire(self) -> None:
        self.timer._pending.discard(self)
        if not self.entry.canceled:
            # An entry may block (a heartbeat sends on a socket): never on the hub.
            Greenlet.spawn(self.timer.apply_entry, self.entry)

    def cancel(self) -> None:
        """Stop the entry, and its later runs when it repeats."""
        self.entry.cancel()
        self.handle.cancel()
        self.timer._pending.discard(self)

    @property
    def canceled(self) -> bool:
        """True once the entry was cancelled."""
        return bool(self.entry.canceled)


class Timer(_kombu_timer.Timer):
    """The worker's timer (ETA and countdown tasks, heartbeats) on the hub's own timers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: set[_Scheduled] = set()

    def _enter(self, eta: float, priority: int, entry: Any, push: Any = None) -> _Scheduled:
        scheduled = _Scheduled(self, eta, priority, entry)
        self._pending.add(scheduled)
        return scheduled

    def cancel(self, tref: Any) -> None:
        """Cancel what ``call_at``, ``call_after`` or ``call_repeatedly`` returned."""
        tref.cancel()

    def clear(self) -> None:
        """Cancel every entry not yet due."""
        for scheduled in list(self._pending):
            scheduled.cancel()

    def stop(self) -> None:
        """Cancel every entry not yet due (the worker is stopping)."""
        self.clear()

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def queue(self) -> list[_kombu_timer.scheduled]:
        """The entries not yet due, earliest first, as kombu's timer lists them."""
        ordered = sorted(self._pending, key=lambda s: (s.eta, s.priority))
        return [_kombu_timer.scheduled(s.eta, s.priority, s.entry) for s in ordered]


class _HardTimeLimit(BaseException):
    """Raised in a task whose hard time limit passed; a BaseException so ``except Exception`` lets it by."""


class _Job:
    """One task run by the pool: its greenlet, its time limits and how it is terminated."""

    __slots__ = (
        "__weakref__",
        "accept_callback",
        "args",
        "callback",
        "greenlet",
        "hard_limit",
        "kwargs",
        "soft_limit",
        "target",
        "terminated",
        "timeout_callback",
    )

    def __init__(
        self,
        target: Callable[..., Any],
        args: Any,
        kwargs: Any,
        callback: Callable[[Any], Any] | None,
        accept_callback: Callable[..., Any] | None,
        hard_limit: float | None,
        soft_limit: float | None,
        timeout_callback: Callable[[bool, float], Any] | None,
    ) -> None:
        self.target = target
        self.args = args
        self.kwargs = kwargs
        self.callback = callback
        self.accept_callback = accept_callback
        self.hard_limit = hard_limit
        self.soft_limit = soft_limit
        self.timeout_callback = timeout_callback
        self.greenlet: Greenlet[None] | None = None
        self.terminated = False

    def run(self) -> None:
        """Run the task in the calling greenlet, with its time limits armed."""
        task = getcurrent()
        hub = get_hub()
        timers = []
        if self.soft_limit:
            timers.append(hub.call_later(self.soft_limit, self._soft_limit_passed, task, self.soft_limit))
        if self.hard_limit:
            timers.append(hub.call_later(self.hard_limit, self._hard_limit_passed, task))
        try:
            base.apply_target(
                self.target,
                self.args,
                self.kwargs,
                self.callback,
                self.accept_callback,
                pid=id(task),
                propagate=(GreenletExit, _HardTimeLimit),
            )
        except _HardTimeLimit:
            if self.timeout_callback is not None and self.hard_limit:
                self.timeout_callback(False, self.hard_limit)
        except GreenletExit:
            pass  # terminated: the request reports the task revoked itself
        finally:
            for timer in timers:
                timer.cancel()
            self.target = self.args = self.kwargs = None  # type: ignore[assignment]

    def _soft_limit_passed(self, task: Greenlet[None], seconds: float) -> None:
        if task.dead or self.terminated:
            return
        if self.timeout_callback is not None:
            self.timeout_callback(True, seconds)
        task.kill(SoftTimeLimitExceeded(seconds), block=False)

    def _hard_limit_passed(self, task: Greenlet[None]) -> None:
        if not task.dead and not self.terminated:
            self.terminated = True
            task.kill(_HardTimeLimit(self.hard_limit), block=False)

    def terminate(self, signal: int | None = None) -> None:
        """Kill the task where it waits (``revoke(terminate=True)``); a no-op once done."""
        task = self.greenlet
        if self.terminated or task is None or task.dead:
            return
        self.terminated = True
        if getcurrent() is task:
            # A signal handler (cold shutdown) running inside this very task:
            # raising here would end the handler half-way; the task gets it at
            # its next wait instead.
            get_hub().run_callback(task.kill, GreenletExit, False)
        else:
            task.kill(block=False)


class TaskPool(base.BasePool):
    """Celery's worker pool on corun: each task a corun task, at most ``-c`` of them at once."""

    Timer = Timer

    #: Celery must not stop the pool from inside a signal handler.
    signal_safe = False
    is_green = True
    task_join_will_block = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The worker's --time-limit / --soft-time-limit; a task's own limits win.
        self.default_hard_limit: float | None = kwargs.get("timeout")
        self.default_soft_limit: float | None = kwargs.get("soft_timeout")
        self._pool: Pool | None = None
        self._jobs: dict[int, _Job] = {}

    def on_start(self) -> None:
        self._pool = Pool(self._pool_size(self.limit))

    @staticmethod
    def _pool_size(limit: int | None) -> int | None:
        # Autoscaling down to 0 keeps one slot: a task that arrives then is
        # reserved, the autoscaler sees it and grows the pool anyway.
        return None if limit is None else max(1, int(limit))

    def on_apply(
        self,
        target: Callable[..., Any],
        args: Any = None,
        kwargs: Any = None,
        callback: Callable[[Any], Any] | None = None,
        accept_callback: Callable[..., Any] | None = None,
        timeout: float | None = None,
        soft_timeout: float | None = None,
        timeout_callback: Callable[[bool, float], Any] | None = None,
        **_: Any,
    ) -> _Job:
        """Start one task; wait (only the consumer's task) while the pool is full."""
        assert self._pool is not None, "the pool was not started"
        job = _Job(
            target,
            args or (),
            kwargs or {},
            callback,
            accept_callback,
            self.default_hard_limit if timeout is None else timeout,
            self.default_soft_limit if soft_timeout is None else soft_timeout,
            timeout_callback,
        )
        greenlet = Greenlet(job.run)
        job.greenlet = greenlet
        pid = id(greenlet)
        self._jobs[pid] = job
        greenlet.rawlink(lambda _g: self._jobs.pop(pid, None))
        self._pool.start(greenlet)
        return job

    def spawn_n(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Greenlet[Any]:
        """Run ``func`` in a task outside the pool's limit (the worker's remote-control loop)."""
        return Greenlet.spawn(func, *args, **kwargs)

    def terminate_job(self, pid: int, signal: int | None = None) -> None:
        """Kill the running task whose pid ``accept_callback`` was given."""
        job = self._jobs.get(pid)
        if job is not None:
            job.terminate(signal)

    def grow(self, n: int = 1) -> None:
        """Let ``n`` more tasks run at once (``--autoscale``, ``pool_grow``)."""
        self.limit += n
        if self._pool is not None:
            self._pool.resize(self._pool_size(self.limit))

    def shrink(self, n: int = 1) -> None:
        """Let ``n`` fewer tasks run at once; running tasks finish undisturbed."""
        if n > self.limit:
            raise ValueError(f"cannot shrink a pool of {self.limit} by {n}")
        self.limit -= n
        if self._pool is not None:
            self._pool.resize(self._pool_size(self.limit))

    def on_stop(self) -> None:
        """Warm shutdown: wait for the running tasks to finish."""
        if self._pool is None:
            return
        # Celery's cold-shutdown handler stops the pool from inside a signal
        # handler, which may run in one of the pool's own tasks: wait for the others.
        # A task that has just ended stays a member until the hub runs its
        # links, so only unfinished ones are waited for: re-reading the
        # members without ever yielding would spin with the hub starved.
        current = getcurrent()
        while others := [g for g in self._pool if g is not current and not g.dead]:
            joinall(others)

    def on_terminate(self) -> None:
        """Cold shutdown: kill the running tasks where they wait."""
        if self._pool is not None:
            for job in list(self._jobs.values()):
                job.terminate()
            self._pool.join(timeout=5)

    def _get_info(self) -> dict[str, Any]:
        info: dict[str, Any] = super()._get_info()
        pool = self._pool
        info.update(
            {
                "max-concurrency": self.limit,
                "running-tasks": 0 if pool is None else len(pool),
                "free-slots": 0 if pool is None else pool.free_count(),
            }
        )
        return info

    @property
    def num_processes(self) -> int:
        """How many tasks may run at once (what ``--autoscale`` compares with the load)."""
        return int(self.limit)
