"""Cooperative twin of :mod:`subprocess`: ``Popen`` whose waits and pipes block only the calling task.

Facts this module relies on:

- ``run``, ``call``, ``check_call``, ``check_output`` and ``getoutput`` look
  up the module-global ``Popen`` at call time, so replacing that one class
  makes all of them cooperative, each with its own version's behaviour
  (``TimeoutExpired``, ``CalledProcessError``, the kill after a timeout).
- The stdlib's POSIX ``Popen`` comes down to three blocking things: the
  ``waitpid`` in ``_wait``, the selector in ``_communicate`` (the
  module-global ``_PopenSelector``) and the pipe file objects.  ``Popen``
  here is a subclass that replaces ``_wait`` (waiting on the child's pidfd,
  or SIGCHLD, through ``corun.patches.os.ChildExit``), the module's
  ``_PopenSelector`` becomes a cooperative selector, and the pipes are
  rebuilt on a raw file that waits for readiness; everything else (argument
  checks, ``_waitpid_lock``, return codes, the ``KeyboardInterrupt`` grace
  wait) stays the stdlib's own.
- The parent's end of each pipe is made non-blocking, which only the parent
  sees (the child has the other end).  But a pipe handed on to another
  child (``Popen(..., stdin=p1.stdout)``) shares that flag with it, and most
  programs cannot read a non-blocking stdin: such a pipe is made blocking
  again first, and from then on is only read or written after the hub said
  it is ready (at most ``PIPE_BUF`` bytes per write, which then cannot block).
- ``_communicate`` reads and writes the raw fds with ``os.read``/``os.write``
  only after its selector reported them ready, which on a non-blocking pipe
  cannot fail with ``EAGAIN`` (a writable pipe takes ``PIPE_BUF`` bytes).
"""

from __future__ import annotations

import subprocess as _stdsubprocess
from collections.abc import Callable
from typing import Any, cast

from corun.hub import get_hub, sleep

from . import selectors as _coselectors
from .io import cooperative, pipe_on
from .os import WNOHANG, ChildExit

__target__ = "subprocess"
__implements__ = ["Popen", "_PopenSelector"]
__all__ = ["Popen"]

#: The selector ``communicate`` uses, chosen as the stdlib chooses its own.
_PopenSelector: Any = getattr(_coselectors, "PollSelector", _coselectors.SelectSelector)


# -- pipes -------------------------------------------------------------------------


def _hand_to_child(target: Any) -> None:
    """If ``target`` (a Popen stdin/stdout/stderr argument) is one of our pipes, make it blocking."""
    if target is None:
        return
    if isinstance(target, int):
        fd = target
    else:
        try:
            fd = target.fileno()
        except (AttributeError, OSError, ValueError):
            return  # the stdlib will report it
    pipe = pipe_on(fd) if isinstance(fd, int) else None
    if pipe is not None and not pipe.closed:
        pipe.hand_to_child()


# -- Popen -------------------------------------------------------------------------


class Popen(_stdsubprocess.Popen):
    """``subprocess.Popen`` whose ``wait``, ``communicate`` and pipes block only the calling task."""

    # The stdlib's private POSIX helpers this class builds on (3.10-3.13).
    _waitpid_lock: Any
    _try_wait: Callable[[int], tuple[int, int]]
    _handle_exitstatus: Callable[[int], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Positions of stdin, stdout and stderr in Popen's signature (3.10-3.13).
        for index, name in ((3, "stdin"), (4, "stdout"), (5, "stderr")):
            _hand_to_child(args[index] if len(args) > index else kwargs.get(name))
        super().__init__(*args, **kwargs)
        bufsize = args[1] if len(args) > 1 else kwargs.get("bufsize", -1)
        for name in ("stdin", "stdout", "stderr"):
            f = getattr(self, name)
            if f is not None:
                setattr(self, name, cooperative(f, bufsize, nonblocking=True))

    def _wait(self, timeout: float | None) -> int | None:
        """Wait for the child to exit; only the calling task waits."""
        if self.returncode is not None:
            return self.returncode
        # On the hub's clock, as the waits below are: under a virtual clock both are virtual.
        clock = get_hub().clock
        deadline = None if timeout is None else clock() + timeout
        if self._look():
            return self.returncode
        with ChildExit(self.pid) as child:
            delay = 0.001
            while True:
                looked = self._look()
                if looked:
                    return self.returncode
                remaining = None if deadline is None else deadline - clock()
                if remaining is not None and remaining <= 0:
                    raise _stdsubprocess.TimeoutExpired(self.args, cast(float, timeout))
                if looked is None:
                    # Another task or thread is looking right now; it will be done soon.
                    sleep(delay if remaining is None else min(delay, remaining))
                    delay = min(delay * 2, 0.05)
                else:
                    child.wait(remaining)

    def _look(self) -> bool | None:
        """One ``waitpid(WNOHANG)``, as the stdlib does it: True once the return code is known.

        None when another task or thread holds ``_waitpid_lock`` (it is looking).
        """
        if not self._waitpid_lock.acquire(False):
            return True if self.returncode is not None else None
        try:
            if self.returncode is not None:
                return True
            pid, sts = self._try_wait(WNOHANG)
            if pid == self.pid:
                self._handle_exitstatus(sts)
                return True
            return False
        finally:
            self._waitpid_lock.release()
