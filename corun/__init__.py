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
"""

# First: whether the compiled core or the sources load (corun/_build.py).
from . import _build as _build
from . import _originals as _originals  # next: the real stdlib, before any patching
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
from .timeout import Timeout as Timeout
from .timeout import with_timeout as with_timeout

__version__ = "0.1.0"
from . import hub as _hub
from ._await import await_ as await_
from ._await import to_async as to_async
from ._signals import signal_handler as signal_handler
from .lock import BoundedSemaphore as BoundedSemaphore
from .lock import Lock as Lock
from .lock import RLock as RLock
from .lock import Semaphore as Semaphore

# Also has the monitor read CORUN_MONITOR and CORUN_DUMP_ON for every hub made from now on.
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

# The core modules of the optional compiled build (setup.py), and whether they run compiled
# here: an extension module has no Python source as its __file__.
COMPILED_MODULES = _build.COMPILED_MODULES
COMPILED: bool = not (_hub.__file__ or "").endswith(".py")
