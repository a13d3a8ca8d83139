"""A pool of real OS threads for calls that cannot be made cooperative.

Facts this module relies on:

- Only ``hub.run_callback_threadsafe`` may be called from another thread.  A
  worker hands each outcome back through it; everything else (the
  AsyncResult, ``hub.pending``, the table of jobs in flight) is touched on the
  hub's thread only, so it needs no lock.
- ``hub.pending`` counts jobs whose outcome is still to come: while it is
  above zero the hub waits for its wake-up fd instead of reporting a
  deadlock.  It goes up once when a job is submitted and down exactly once,
  when the job is settled on the hub (outcome delivered, or job declared lost).
- Workers are started with the saved ``_thread`` originals and share state
  under an original lock: once ``threading`` is monkey-patched, its locks park
  tasks on a hub, which is the last thing a worker thread may do.
- A thread cannot be interrupted.  ``kill()`` settles every unfinished job at
  once and retires the workers; a worker busy in a call leaves when the call
  returns and drops its outcome, so it never writes to a hub that is gone.
- After ``fork`` the child has none of the parent's threads: jobs that were in
  flight can never finish there, and are declared lost.
- The hub knows nothing of thread pools.  This module owns each hub's
  default pool and hears of a hub's destroy and of a fork through
  ``corun.hub.register_lifecycle_hooks``.
"""

from __future__ import annotations

import _queue
import contextvars
import os
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import _originals
from ._waitqueue import WaitQueue
from .event import AsyncResult
from .hub import Hub, get_hub, register_lifecycle_hooks

__all__ = ["ThreadJobLost", "ThreadPool", "ThreadPoolStatistics", "get_threadpool", "worker_threads"]

T = TypeVar("T")

# A worker with nothing to do for this long ends its thread.
IDLE_TIMEOUT = 5.0
# The most threads a hub's default pool runs at once.
DEFAULT_MAXSIZE = 10


class ThreadJobLost(RuntimeError):
    """A thread pool job whose outcome will never arrive (pool killed, or process forked)."""


@dataclass(frozen=True)
class ThreadPoolStatistics:
    """A snapshot of a ThreadPool."""

    maxsize: int
    threads: int
    idle_threads: int
    jobs_in_flight: int


class _Job(Generic[T]):
    """One call to make in a worker thread, and where its outcome goes."""

    __slots__ = ("args", "context", "dropped", "func", "kwargs", "result", "settled", "started")

    def __init__(self, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.func: Callable[..., T] | None = func
        self.args = args
        self.kwargs = kwargs
        # Like asyncio.to_thread: the call sees the submitting task's context.
        self.context = contextvars.copy_context()
        self.result: AsyncResult[T] = AsyncResult()
        # Both written under the crew's lock: a job is either started by a
        # worker or dropped by the hub, never both.
        self.started = False
        self.dropped = False
        # Hub thread only: the outcome was delivered, or the job declared lost.
        self.settled = False

    def run(self) -> tuple[bool, Any]:
        """Make the call (in a worker thread); return ``(ok, value or exception)``."""
        func, args, kwargs = self.func, self.args, self.kwargs
        self.func = None
        self.args = ()
        self.kwargs = {}
        assert func is not None
        try:
            return True, self.context.run(func, *args, **kwargs)
        except BaseException as exc:  # delivered to the waiting task, whatever it is
            return False, exc


class _Crew:
    """The worker threads of one generation and the queue they take jobs from.

    ``kill()`` and fork replace the whole crew; the retired crew's workers see
    the flag (under the crew's lock) and leave without touching the hub again.
    """

    __slots__ = ("exits", "idle", "jobs", "lock", "retired", "unclaimed")

    def __init__(self) -> None:
        self.lock = _originals.allocate_lock()
        self.jobs: Any = _originals.SimpleQueue()
        # One lock per live worker, held until that worker's last statement.
        self.exits: set[Any] = set()
        self.idle = 0  # workers not busy in a call (including ones just started)
        self.unclaimed = 0  # jobs queued that no worker has taken yet
        self.retired = False


_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


class ThreadPool:
    """Up to ``maxsize`` real OS threads running blocking calls for the tasks of one hub.

    Threads start on demand and end after ``idle_timeout`` seconds without
    work.  Use a pool from its hub's thread only.
    """

    def __init__(self, maxsize: int, hub: Hub | None = None, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise TypeError(f"ThreadPool maxsize must be an int, not {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"ThreadPool maxsize must be at least 1, not {maxsize}")
        self._maxsize = maxsize
        self._hub = hub
        self._idle_timeout = idle_timeout
        self._crew = _Crew()
        # Insertion-ordered, so kill() and fork settle jobs in submission order.
        self._in_flight: dict[_Job[Any], None] = {}
        self._joiners = WaitQueue()
        _pools.add(self)

    def __repr__(self) -> str:
        return (
            f"<ThreadPool maxsize={self._maxsize} threads={len(self._crew.exits)} "
            f"in_flight={len(self._in_flight)} at {id(self):#x}>"
        )

    def __len__(self) -> int:
        """Jobs submitted whose outcome has not been delivered yet."""
        return len(self._in_flight)

    @property
    def maxsize(self) -> int:
        """The most threads this pool runs at once."""
        return self._maxsize

    @property
    def size(self) -> int:
        """How many worker threads are alive now."""
        crew = self._crew
        with crew.lock:
            return len(crew.exits)

    def statistics(self) -> ThreadPoolStatistics:
        """Threads alive and idle, and jobs in flight."""
        crew = self._crew
        with crew.lock:
            threads, idle = len(crew.exits), crew.idle
        return ThreadPoolStatistics(self._maxsize, threads, idle, len(self._in_flight))

    def _own_hub(self) -> Hub:
        hub = self._hub
        if hub is None:
            hub = self._hub = get_hub()
        elif hub.thread_ident != _originals.get_ident():
            raise RuntimeError(
                f"{self!r} belongs to the hub of thread {hub.thread_ident}, not to the calling thread "
                f"{_originals.get_ident()}; use it from that thread only"
            )
        return hub

    # -- submitting -----------------------------------------------------------

    def spawn(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> AsyncResult[T]:
        """Run ``func(*args, **kwargs)`` in a worker thread; return where its outcome will appear.

        Raises:
            RuntimeError: called from another thread than the pool's hub, or
                that hub was destroyed.
        """
        return self._submit(func, args, kwargs).result

    def _submit(self, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Job[T]:
        hub = self._own_hub()
        if hub.destroyed:
            raise RuntimeError(f"{self!r} cannot take work: its hub was destroyed")
        if not callable(func):
            raise TypeError(f"ThreadPool.spawn needs a callable, not {func!r}")
        job = _Job(func, args, kwargs)
        crew = self._crew
        with crew.lock:
            # Every queued job needs an idle worker; start one if there are
            # more unclaimed jobs (this one included) than idle workers.
            if crew.unclaimed >= crew.idle and len(crew.exits) < self._maxsize:
                self._start_worker(crew, hub)
            crew.jobs.put(job)
            crew.unclaimed += 1
        self._in_flight[job] = None
        hub.pending += 1
        return job

    def _start_worker(self, crew: _Crew, hub: Hub) -> None:
        # Called with crew.lock held, so the new worker cannot leave before it
        # is counted.
        exit_lock = _originals.allocate_lock()
        exit_lock.acquire()
        _workers.add(exit_lock)
        try:
            _originals.start_new_thread(self._work, (crew, hub, exit_lock))
        except RuntimeError:
            _workers.discard(exit_lock)
            if crew.exits:
                return  # the OS refused another thread; the existing ones will get to it
            raise
        crew.exits.add(exit_lock)
        crew.idle += 1

    def apply(
        self, func: Callable[..., T], args: Iterable[Any] = (), kwds: dict[str, Any] | None = None
    ) -> T:
        """Call ``func(*args, **kwds)`` in a worker thread and wait for it (only this task waits)."""
        return self.spawn(func, *args, **(kwds or {})).get()

    def map(self, func: Callable[..., T], iterable: Iterable[Any]) -> list[T]:
        """``[func(x) for x in iterable]``, the calls made in worker threads."""
        return list(self.imap(func, iterable))

    def imap(self, func: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        """Yield ``func(*args)`` for each ``args`` of ``zip(*iterables)``, in order.

        At most twice ``maxsize`` calls are queued or running ahead of the
        consumer; closing the iterator early cancels the calls not started yet.
        """
        window = 2 * self._maxsize
        args_iter = zip(*iterables, strict=False)
        queued: deque[_Job[T]] = deque()
        exhausted = False
        try:
            while True:
                while not exhausted and len(queued) < window:
                    args = next(args_iter, None)
                    if args is None:
                        exhausted = True
                    else:
                        queued.append(self._submit(func, args, {}))
                if not queued:
                    return
                yield queued.popleft().result.get()
        finally:
            hub = self._hub
            if queued and hub is not None and hub.thread_ident == _originals.get_ident():
                for job in queued:
                    self._cancel(job)

    def _cancel(self, job: _Job[Any]) -> None:
        """Drop a job that no worker has started; it fails with ThreadJobLost."""
        if job.settled:
            return
        crew = self._crew
        with crew.lock:
            if job.started:
                return
            job.dropped = True
        self._lose(job, ThreadJobLost(f"{self!r}: the job was cancelled before it started"))

    # -- the worker threads ---------------------------------------------------

    def _work(self, crew: _Crew, hub: Hub, exit_lock: Any) -> None:
        """The body of one worker thread: take jobs until idle too long or retired."""
        try:
            while True:
                try:
                    job = crew.jobs.get(timeout=self._idle_timeout)
                except _queue.Empty:
                    with crew.lock:
                        # A job put just as the wait timed out still needs this worker.
                        if crew.unclaimed and not crew.retired:
                            continue
                        crew.idle -= 1
                        crew.exits.discard(exit_lock)
                        return
                with crew.lock:
                    if job is None or crew.retired:
                        crew.exits.discard(exit_lock)
                        return
                    crew.unclaimed -= 1
                    if job.dropped:
                        continue
                    job.started = True
                    crew.idle -= 1
                ok, outcome = job.run()
                with crew.lock:
                    if crew.retired:
                        crew.exits.discard(exit_lock)
                        return
                    crew.idle += 1
                    # Under the lock: kill() cannot retire the crew (and let
                    # the hub close its wake-up fd) between the check and the write.
                    if not hub.destroyed:
                        hub.run_callback_threadsafe(self._settle, job, ok, outcome)
                del job, outcome  # do not keep the last outcome alive while idle
        finally:
            _workers.discard(exit_lock)
            exit_lock.release()

    # -- settling on the hub --------------------------------------------------

    def _settle(self, job: _Job[Any], ok: bool, outcome: Any) -> None:
        if job.settled:
            return  # declared lost (kill) while the outcome was on its way
        self._forget(job)
        if ok:
            job.result.set(outcome)
        else:
            job.result.set_exception(outcome)

    def _lose(self, job: _Job[Any], exc: ThreadJobLost) -> None:
        self._forget(job)
        job.result.set_exception(exc)

    def _forget(self, job: _Job[Any]) -> None:
        job.settled = True
        del self._in_flight[job]
        assert self._hub is not None
        self._hub.pending -= 1
        if not self._in_flight:
            self._joiners.grant_all(True)

    # -- waiting and stopping -------------------------------------------------

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has its outcome; False on timeout."""
        hub = self._own_hub()
        if not self._in_flight:
            return True
        self._joiners.park(hub, self, timeout)
        return not self._in_flight

    def kill(self, timeout: float | None = 5.0) -> bool:
        """Stop the workers; every job not finished yet fails with ThreadJobLost.

        A worker busy in a call cannot be interrupted: its job fails at once,
        and the thread ends when the call returns.  Waits (blocking the whole
        thread, not just the task) up to ``timeout`` seconds for every worker
        thread to end, ``None`` meaning as long as it takes.  The pool can be
        used again afterwards; it starts new threads.

        Returns:
            True if every worker thread has ended.
        """
        self._own_hub()
        crew, self._crew = self._crew, _Crew()
        with crew.lock:
            crew.retired = True
            exits = list(crew.exits)
            for _ in exits:
                crew.jobs.put(None)  # wakes an idle worker so it can leave
        # After retired is set no worker starts another job, so ``started``
        # cannot change any more.
        for job in list(self._in_flight):
            when = (
                "while it ran in a thread (its outcome is discarded)" if job.started else "before it started"
            )
            self._lose(job, ThreadJobLost(f"{self!r} was killed {when}"))
        return _wait_for_exits(exits, timeout)

    def _after_fork(self) -> int:
        """In a forked child: forget the parent's workers, fail the jobs in flight.

        Returns:
            How many jobs were lost; the caller takes them off ``hub.pending``.
        """
        self._crew = _Crew()
        lost = list(self._in_flight)
        self._in_flight.clear()
        for job in lost:
            job.settled = True
            job.result.set_exception(
                ThreadJobLost(
                    "the process forked while this job was in flight in the parent's thread pool; "
                    "the child has none of the parent's threads, so it will never finish here"
                )
            )
        self._joiners.grant_all(True)
        return len(lost)


# One entry per live worker thread of every pool (its exit lock): the
# thread twin leaves corun's own threads out of what it reports as threads.
_workers: set[Any] = set()


def worker_threads() -> int:
    """How many worker threads of all thread pools are alive."""
    return len(_workers)


def _wait_for_exits(exits: list[Any], timeout: float | None) -> bool:
    deadline = None if timeout is None else _originals.monotonic() + timeout
    for exit_lock in exits:
        if deadline is None:
            exit_lock.acquire()
            continue
        left = deadline - _originals.monotonic()
        if not (exit_lock.acquire(True, left) if left > 0 else exit_lock.acquire(False)):
            return False
    return True


def get_threadpool(hub: Hub | None = None) -> ThreadPool:
    """The default pool of ``hub`` (the calling thread's hub by default), made on first use.

    gevent's programs know it as ``get_hub().threadpool``, which is the same pool.

    Raises:
        RuntimeError: ``hub`` was destroyed (its pool was killed with it).
    """
    if hub is None:
        hub = get_hub()
    pool = _default_pools.get(hub)
    if pool is None:
        if hub.destroyed:
            raise RuntimeError(f"{hub!r} was destroyed: it has no thread pool any more")
        pool = _default_pools[hub] = ThreadPool(DEFAULT_MAXSIZE, hub=hub)
    return pool


# Each hub's default pool, dropped when its hub is destroyed.  Weak keys would
# not help: the pool refers to its hub.  A hub left behind by an ended thread
# keeps its entry; one that ran there is never collected anyway (it stays
# suspended in that thread's last frame, see hub._ReleaseAtThreadExit).
_default_pools: dict[Hub, ThreadPool] = {}

# ``get_hub().threadpool``, as gevent's hub has it.  The hub itself knows
# nothing of thread pools (they are built on it), so this module adds the
# property; until it is imported, corun's own stand-in imports it on first use.
_threadpool = property(get_threadpool, doc="The hub's default thread pool (``get_threadpool(hub)``).")
setattr(Hub, "threadpool", _threadpool)  # noqa: B010 - the hub's class declares no such attribute


def _kill_pools_of(hub: Hub) -> None:
    # Otherwise a worker finishing late would write to the destroyed hub's
    # wake-up fd, which is closed and may already belong to another file.
    _default_pools.pop(hub, None)
    for pool in list(_pools):
        if pool._hub is hub:
            pool.kill()


def _reset_pools_after_fork(hub: Hub) -> None:
    # Every pool of the forking thread's hub: jobs in flight there would keep
    # hub.pending up for ever, waiting on threads the child does not have.
    for pool in list(_pools):
        if pool._hub is hub:
            hub.pending -= pool._after_fork()


register_lifecycle_hooks(on_destroy=_kill_pools_of, after_fork_in_child=_reset_pools_after_fork)
# No worker thread of any pool, whatever its hub, survives a fork.
os.register_at_fork(after_in_child=_workers.clear)
