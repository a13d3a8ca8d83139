"""grpcio's synchronous client and server, made to park only the calling task.

Facts this module relies on (grpcio 1.60 to 1.85, read in 1.85's Cython sources):

- The synchronous stack waits in C, in ``grpc_completion_queue_next`` with
  the GIL released, from two places: ``_latent_event`` (each call's or the
  channel's completion queue) and ``CompletionQueue.poll`` (the server's).
  Both ask one module global of ``grpc._cython.cygrpc`` first: when
  ``g_gevent_activated`` is true they run the wait through
  ``g_gevent_threadpool.apply(func, args)`` instead.  That is the hook grpc's
  own ``grpc.experimental.gevent.init_gevent()`` sets; any object with an
  ``apply`` will do, so the waits go to a corun thread pool here and only
  the waiting task parks.
- With that flag on, ``grpc._channel`` counts channels through
  ``gevent_increment_channel_count``, which starts ``spawn_greenlets`` in
  ``g_gevent_pool`` on the first channel: a loop that takes callbacks queued
  by gevent's callback function.  corun delivers callbacks itself (below),
  so that loop is never started.
- Callbacks grpc makes from its own C threads (``_spawn_callback_async``, for
  call credentials' metadata plugins) go through ``async_callback_func``,
  set by ``set_async_callback_func``.  A thread of grpc's is no task's, so
  the callback crosses to the hub with ``run_callback_threadsafe`` and runs
  there as a task.
- A blocking call with a single answer (unary-unary or stream-unary,
  ``__call__`` and ``with_call``) waits on a completion queue of its own,
  one wait in the thread pool per call, and a task interrupted during that
  wait cannot cancel it: grpc would destroy the queue while the worker
  still waits on it.  So these are made ``future()`` then ``result()``:
  the channel's one spin thread (a task under patching) waits for every
  call of the channel, the caller parks on a condition, and a killed or
  timed-out caller cancels its call.
- A stream's reader parks on the same condition.  grpc cancels a stream
  abandoned by its reader only once the call object is collected, and a
  killed task keeps its exception, whose traceback holds the call.  So a
  reader that leaves with anything but the stream's end or its error
  cancels the call.
- The thread a wait runs in cannot be interrupted.  A task interrupted while
  its wait runs in a worker stays until the wait returns (grpc frees the
  queue on the way out), then goes on with the interruption.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from .greenlet import spawn
from .hub import Hub, get_hub
from .threadpool import ThreadPool

__all__ = ["TESTED_VERSIONS", "GrpcNotSupported", "changes", "init", "is_initialized"]

# The grpcio releases (major, minor) this integration was tested with: the
# latest patch release of each from 1.60 to 1.85 (there is no 1.77 or 1.79).
TESTED_VERSIONS: tuple[tuple[int, int], ...] = tuple((1, minor) for minor in range(60, 86))

# The most completion-queue waits running at once for one hub: one per
# channel with calls in flight, one per server, and one per call of a channel
# made with the experimental option SingleThreadedUnaryStream.
WAIT_THREADS = 64

# The names of grpc._cython.cygrpc this module sets.
_HOOKS = ("g_gevent_activated", "g_gevent_threadpool", "g_gevent_pool", "async_callback_func")


class GrpcNotSupported(RuntimeError):
    """The installed grpcio is not one this integration knows how to hook."""


class _WaitPool:
    """What cygrpc takes as its thread pool: ``apply`` runs one completion-queue wait in a worker."""

    def apply(
        self, func: Callable[..., Any], args: Iterable[Any] = (), kwds: dict[str, Any] | None = None
    ) -> Any:
        """Call ``func(*args, **kwds)`` in a worker thread of this thread's hub; only this task waits."""
        hub = get_hub()
        pool = _wait_pools.get(hub)
        if pool is None:
            # corun.threadpool kills a pool with its hub; forget those.
            for ended in [other for other in _wait_pools if other.destroyed]:
                del _wait_pools[ended]
            pool = _wait_pools[hub] = ThreadPool(WAIT_THREADS, hub=hub)
        result = pool.spawn(func, *args, **(kwds or {}))
        try:
            return result.get()
        except BaseException:
            # Leave only once the worker is done with the completion queue,
            # which grpc frees as the interruption goes up through it.
            while not result.ready():
                try:
                    result.wait()
                except BaseException:
                    # The first interruption is the one raised.
                    continue
            raise


# Each hub's pool for completion-queue waits.
_wait_pools: dict[Hub, ThreadPool] = {}


class _Spawner:
    """What cygrpc takes as its greenlet pool; it is only asked to start gevent's callback loop."""

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        """Start nothing: callbacks reach the hub through ``async_callback_func`` instead."""


def _callback_deliverer(hub: Hub) -> Callable[[Callable[..., Any], tuple[Any, ...]], None]:
    """The ``async_callback_func`` for grpc: run each callback as a task of ``hub``."""

    def deliver(callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # Called from one of grpc's C threads, never from the hub's.
        hub.run_callback_threadsafe(spawn, callback, *args)

    return deliver


def _blocking_with_call(
    self: Any,
    request: Any,
    timeout: float | None = None,
    metadata: Any = None,
    credentials: Any = None,
    wait_for_ready: bool | None = None,
    compression: Any = None,
) -> tuple[Any, Any]:
    """``with_call`` of a call with one answer: ``future()``, ``result()``, cancelled if the caller leaves."""
    future = self.future(
        request,
        timeout=timeout,
        metadata=metadata,
        credentials=credentials,
        wait_for_ready=wait_for_ready,
        compression=compression,
    )
    try:
        return future.result(), future
    except BaseException:
        # A failed call is done already and cancel() changes nothing; a task
        # killed or timed out stops its call on the server too.
        future.cancel()
        raise


def _blocking_call(
    self: Any,
    request: Any,
    timeout: float | None = None,
    metadata: Any = None,
    credentials: Any = None,
    wait_for_ready: bool | None = None,
    compression: Any = None,
) -> Any:
    """``__call__`` of a call with one answer: ``future()``, ``result()``, cancelled if the caller leaves."""
    return _blocking_with_call(self, request, timeout, metadata, credentials, wait_for_ready, compression)[0]


def _cancelling_on_leave(next_message: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A stream's ``_next``, made to cancel the call when its reader is killed or timed out."""
    import grpc

    def _next(self: Any) -> Any:
        try:
            return next_message(self)
        except (StopIteration, grpc.RpcError):
            raise
        except BaseException:
            # Not an end of the stream: the reading task is leaving (killed,
            # timed out).  grpc would cancel only once the call is collected,
            # and the task's stored exception keeps it alive.
            self.cancel()
            raise

    return _next


def _check_supported() -> None:
    """Raise GrpcNotSupported unless grpc is a tested release with the hooks this module sets."""
    import grpc
    from grpc import _channel
    from grpc._cython import cygrpc

    version = str(getattr(grpc, "__version__", "unknown"))
    parts = version.split(".")
    try:
        release = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        release = (0, 0)
    missing = [name for name in _HOOKS if not hasattr(cygrpc, name)]
    missing += [
        f"grpc._channel.{name}"
        for name in ("_UnaryUnaryMultiCallable", "_StreamUnaryMultiCallable", "_MultiThreadedRendezvous")
        if not hasattr(_channel, name)
    ]
    if release not in TESTED_VERSIONS or missing:
        first, last = TESTED_VERSIONS[0], TESTED_VERSIONS[-1]
        tested = f"{first[0]}.{first[1]} to {last[0]}.{last[1]}"
        lacking = f" (it lacks {', '.join(missing)})" if missing else ""
        raise GrpcNotSupported(
            f"corun.grpc hooks into grpcio's private cygrpc globals and was tested with grpcio {tested}; "
            f"grpcio {version} is installed{lacking}. Install a tested grpcio, or run without the grpc "
            f"patch area (python -m corun --no-grpc, patch_all(grpc=False)) and call grpc from "
            f"corun.get_threadpool()."
        )


def changes(hub: Hub | None = None) -> list[tuple[str, str, Any]]:
    """The ``(module, attribute path, value)`` settings that make grpc cooperative on ``hub``.

    Args:
        hub: where callbacks from grpc's threads run as tasks (the calling
            thread's hub by default).

    Raises:
        GrpcNotSupported: the installed grpcio is not a tested one.
    """
    _check_supported()
    from grpc._channel import _MultiThreadedRendezvous as rendezvous

    cygrpc = "grpc._cython.cygrpc"
    return [
        (cygrpc, "g_gevent_threadpool", _WaitPool()),
        (cygrpc, "g_gevent_pool", _Spawner()),
        (cygrpc, "async_callback_func", _callback_deliverer(hub if hub is not None else get_hub())),
        ("grpc._channel", "_UnaryUnaryMultiCallable.__call__", _blocking_call),
        ("grpc._channel", "_UnaryUnaryMultiCallable.with_call", _blocking_with_call),
        ("grpc._channel", "_StreamUnaryMultiCallable.__call__", _blocking_call),
        ("grpc._channel", "_StreamUnaryMultiCallable.with_call", _blocking_with_call),
        ("grpc._channel", "_MultiThreadedRendezvous._next", _cancelling_on_leave(rendezvous._next)),
        # Last: the flag turns on the hooks set above.
        (cygrpc, "g_gevent_activated", True),
    ]


def init() -> None:
    """Make grpcio's synchronous client and server wait per task on this thread's hub; idempotent.

    ``corun.monkey.patch_all()`` does this itself (the ``grpc`` patch area),
    now or when grpc is first imported.

    Raises:
        GrpcNotSupported: the installed grpcio is not a tested one.
    """
    if is_initialized():
        return
    import importlib

    for module_name, path, value in changes():
        owner_path, _, attr = path.rpartition(".")
        owner: Any = importlib.import_module(module_name)
        if owner_path:
            owner = getattr(owner, owner_path)
        setattr(owner, attr, value)


def is_initialized() -> bool:
    """Whether grpc's completion-queue waits go through corun (by ``init`` or patching)."""
    cygrpc = sys.modules.get("grpc._cython.cygrpc")
    return cygrpc is not None and isinstance(getattr(cygrpc, "g_gevent_threadpool", None), _WaitPool)
