"""corun: ordinary blocking Python code, run concurrently on one thread.

Layers, each depending only on the ones before it:

- the core (this package): the hub (``hub``), tasks (``greenlet``), timeouts
  and the synchronisation primitives built on one way to block;
- ``corun.patches``: cooperative twins of blocking stdlib modules, built on
  the core;
- ``corun.monkey``: installs ``corun.patches`` into the running interpreter;
- the servers (``corun.server``, ``corun.wsgi``, ``corun.gunicorn``): they
  serve through the cooperative socket and ssl classes of ``corun.patches``,
  so they sit above them, as gevent's servers sit above its socket module.

Nothing in the core imports ``patches`` or ``monkey``.

The public names below are imported on first use, so that ``python -m corun``
and ``corun.monkey`` load only what patching needs; ``from corun import X``
and ``corun.X`` work as for names imported here.
"""

from typing import TYPE_CHECKING, Any

# First: whether the compiled core or the sources load (corun/_build.py).
from . import _build as _build
from . import _originals as _originals  # next: the real stdlib, before any patching
from . import hub as _hub

# Also has the monitor read CORUN_MONITOR and CORUN_DUMP_ON for every hub made from now on
# (a light module: the monitor's machinery is loaded only when something asks for it).
from . import monitor as monitor
from ._runframe import give_run_a_frame as _give_run_a_frame
from .hub import Hub as _Hub

# Compiled, the hub's run has no Python frame of its own; the monitor finds its stack by one.
_give_run_a_frame(_Hub)


def _threadpool_of(hub: _Hub) -> Any:
    """``hub.threadpool`` until ``corun.threadpool`` is imported (which puts its own property in place)."""
    from .threadpool import get_threadpool

    return get_threadpool(hub)


# ``get_hub().threadpool``, as gevent's hub has it, from the moment corun is imported.
if not hasattr(_Hub, "threadpool"):
    _stand_in = property(_threadpool_of, doc="The hub's default thread pool (``get_threadpool(hub)``).")
    setattr(_Hub, "threadpool", _stand_in)  # noqa: B010 - the hub's class declares no such attribute

__version__ = "0.1.0"

# The core modules of the optional compiled build (setup.py), and whether they run compiled
# here: an extension module has no Python source as its __file__.
COMPILED_MODULES = _build.COMPILED_MODULES
COMPILED: bool = not (_hub.__file__ or "").endswith(".py")

if COMPILED:
    # Built with the compiled core (and loaded only with it): finished tasks'
    # frame stacks are kept for new tasks instead of unmapped and mapped again.
    try:
        from . import _stackcache
    except ImportError:
        pass
    else:
        _stackcache.install()

# Each public name and the submodule it comes from, imported at first access.
_EXPORTS: dict[str, str] = {
    "AsyncResult": "event",
    "Event": "event",
    "Greenlet": "greenlet",
    "GreenletExit": "greenlet",
    "getcurrent": "greenlet",
    "iwait": "greenlet",
    "joinall": "greenlet",
    "kill": "greenlet",
    "killall": "greenlet",
    "spawn": "greenlet",
    "spawn_later": "greenlet",
    "wait": "greenlet",
    "BlockingSwitchOutError": "hub",
    "ConcurrentObjectUseError": "hub",
    "LoopExit": "hub",
    "get_hub": "hub",
    "idle": "hub",
    "sleep": "hub",
    "Timeout": "timeout",
    "with_timeout": "timeout",
    "await_": "_await",
    "to_async": "_await",
    "signal_handler": "_signals",
    "BoundedSemaphore": "lock",
    "Lock": "lock",
    "RLock": "lock",
    "Semaphore": "lock",
    "dump": "monitor",
    "stats": "monitor",
    "Group": "pool",
    "Pool": "pool",
    "Channel": "queue",
    "JoinableQueue": "queue",
    "LifoQueue": "queue",
    "PriorityQueue": "queue",
    "Queue": "queue",
    "TaskGroup": "taskgroup",
    "ThreadPool": "threadpool",
}

__all__ = list(_EXPORTS)

# Submodules that ``import corun`` once loaded with everything else, so that
# code reaching them as attributes (``corun.hub.get_hub``) finds them still.
_SUBMODULES = frozenset(
    {
        "_asyncio_state",
        "_await",
        "_clock",
        "_exceptiongroup",
        "_hubbound",
        "_hubstats",
        "_io_base",
        "_signals",
        "_signalwait",
        "_waiter",
        "_waitqueue",
        "_waker",
        "event",
        "greenlet",
        "hub",
        "lock",
        "pool",
        "queue",
        "taskgroup",
        "threadpool",
        "timeout",
    }
)


def __getattr__(name: str) -> Any:
    """Import a public name's submodule (or a submodule) the first time it is asked for."""
    from importlib import import_module

    module_name = _EXPORTS.get(name)
    if module_name is not None:
        value = getattr(import_module(f"{__name__}.{module_name}"), name)
        globals()[name] = value  # later lookups do not come here again
        return value
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, with the public ones not imported yet."""
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


if TYPE_CHECKING:
    from ._await import await_ as await_
    from ._await import to_async as to_async
    from ._signals import signal_handler as signal_handler
    from .event import AsyncResult as AsyncResult
    from .event import Event as Event
    from .greenlet import Greenlet as Greenlet
    from .greenlet import GreenletExit as GreenletExit
    from .greenlet import getcurrent as getcurrent
    from .greenlet import iwait as iwait
    from .greenlet import joinall as joinall
    from .greenlet import kill as kill
    from .greenlet import killall as killall
    from .greenlet import spawn as spawn
    from .greenlet import spawn_later as spawn_later
    from .greenlet import wait as wait
    from .hub import BlockingSwitchOutError as BlockingSwitchOutError
    from .hub import ConcurrentObjectUseError as ConcurrentObjectUseError
    from .hub import LoopExit as LoopExit
    from .hub import get_hub as get_hub
    from .hub import idle as idle
    from .hub import sleep as sleep
    from .lock import BoundedSemaphore as BoundedSemaphore
    from .lock import Lock as Lock
    from .lock import RLock as RLock
    from .lock import Semaphore as Semaphore
    from .monitor import dump as dump
    from .monitor import stats as stats
    from .pool import Group as Group
    from .pool import Pool as Pool
    from .queue import Channel as Channel
    from .queue import JoinableQueue as JoinableQueue
    from .queue import LifoQueue as LifoQueue
    from .queue import PriorityQueue as PriorityQueue
    from .queue import Queue as Queue
    from .taskgroup import TaskGroup as TaskGroup
    from .threadpool import ThreadPool as ThreadPool
    from .timeout import Timeout as Timeout
    from .timeout import with_timeout as with_timeout
