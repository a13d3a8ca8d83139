"""The optional compiled core: which build runs, and that both behave alike.

Each program runs in a fresh interpreter, once as installed (the compiled
core where it was built for this interpreter) and once with
CORUN_PURE_PYTHON=1, and both must report the same outcomes.
"""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_python

# Task switching through the compiled hub, waiter, tasks, locks and queues:
# kill and throw into parked tasks, timeouts, errors re-raised with their
# traceback, Python subclasses of compiled classes, a hang reported as
# LoopExit, and a hub of their own in each of several OS threads.
PROGRAM = r"""
import json, sys, threading, traceback
import corun
import corun._threadsync  # the thread twins import it; corun itself does not
import corun._io_epoll, corun._io_selectors  # the hub imports its readiness back end when it starts
from corun import Event, Greenlet, GreenletExit, Lock, Queue, Timeout, get_hub, sleep, spawn
from corun.hub import LoopExit
from corun.queue import Empty

out = {
    "compiled": corun.COMPILED,
    "sources": sorted(
        m for m in corun.COMPILED_MODULES if sys.modules["corun." + m].__file__.endswith(".py")
    ),
}

order = []
def stepper(name):
    for i in range(3):
        order.append(f"{name}{i}")
        sleep(0)
corun.joinall([spawn(stepper, "a"), spawn(stepper, "b"), spawn(stepper, "c")])
out["switch_order"] = order

q = Queue()
cleaned = []
def getter():
    try:
        q.get()
    finally:
        cleaned.append("getter")
g = spawn(getter)
sleep(0)
g.kill()
out["kill"] = [cleaned, g.dead, type(g.value).__name__, q.qsize()]

class Boom(Exception):
    pass
def sleeper():
    try:
        sleep(30)
    except Boom as exc:
        return f"caught {exc}"
g = spawn(sleeper)
sleep(0)
g.kill(Boom("x"))
out["throw"] = g.value

lock = Lock()
lock.acquire()
try:
    with Timeout(0.05):
        lock.acquire()
    out["timeout"] = "acquired"
except Timeout:
    out["timeout"] = "timed out"
lock.release()
try:
    q.get(timeout=0.05)
except Empty:
    out["get_timeout"] = "Empty"
out["with_timeout"] = corun.with_timeout(0.05, sleep, 30, timeout_value="default")

def fails():
    sleep(0)
    raise ValueError("from a task")
g = spawn(fails)
g.report_errors = False
try:
    g.get()
except ValueError as exc:
    out["error"] = [str(exc), "fails" in "".join(traceback.format_tb(exc.__traceback__))]

class Doubler(Greenlet):
    def __init__(self, x):
        super().__init__()
        self.x = x
    def _run(self):
        sleep(0)
        return self.x * 2
class Counted(Queue):
    def put(self, item, block=True, timeout=None):
        super().put(item * 10, block, timeout)
d = Doubler(21)
d.start()
cq = Counted()
cq.put(4)
out["subclasses"] = [d.get(), cq.get(), isinstance(d, Greenlet)]

# Event is compiled, AsyncResult is a Python subclass of the part they share.
class Noted(Event):
    def set(self):
        seen.append("set")
        super().set()
seen = []
ev = Noted()
ev.rawlink(lambda e: seen.append(f"link {e.ready()}"))
waiter = spawn(lambda: seen.append(f"woke {ev.wait(5)}"))
sleep(0)
ev.set()
waiter.join()
sleep(0)  # the link runs from the hub
timed = Event().wait(0.01)
ar = corun.AsyncResult()
spawn(lambda: ar.set_exception(Boom("failed")))
try:
    ar.get(timeout=5)
except Boom as exc:
    seen.append(str(exc))
try:
    corun.AsyncResult().get(timeout=0.01)
except Timeout:
    seen.append("Timeout")
shared = isinstance(ar, corun.event._Flag)
out["events"] = [seen, timed, ev.isSet(), shared, repr(ev).startswith("<Event set")]

try:
    Event().wait()
except LoopExit as exc:
    out["hang"] = "would block forever" in str(exc)

main_hub = get_hub()
results = {}
def in_thread(i):
    hub = get_hub()
    q = Queue()
    ev = Event()
    def worker(k):
        ev.wait()
        sleep(0.01)
        q.put(k)
    tasks = [spawn(worker, k) for k in range(20)]
    sleep(0)
    ev.set()
    corun.joinall(tasks)
    results[i] = [sorted(q.get() for _ in range(20)) == list(range(20)), hub is not main_hub]
def starter():
    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
spawn(starter).join()
out["threads"] = [results[i] for i in range(4)]

# Waits on fds through each readiness back end: several readers woken by one
# readiness, a timed wait, and a wait ended by the fd's close.
import errno, socket
from corun._io_selectors import SelectorsIO
def fd_waits():
    hub = get_hub()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = []
    def reader(k):
        hub.wait_readable(b.fileno())
        got.append(k)
    readers = [spawn(reader, k) for k in range(3)]
    sleep(0)
    a.send(b"x")
    corun.joinall(readers)
    try:
        hub.wait_readable(a.fileno(), 0.01)
        timed_out = False
    except TimeoutError:
        timed_out = True
    def wait_until_closed():
        try:
            hub.wait_readable(a.fileno())
        except OSError as exc:
            return exc.errno == errno.EBADF
    closing = spawn(wait_until_closed)
    sleep(0)
    hub.notify_closing(a.fileno())
    a.close()
    b.close()
    return [sorted(got), timed_out, closing.get()]
first = fd_waits()
hub = get_hub()
import select
backend = type(hub.io).__name__ == ("EpollIO" if hasattr(select, "epoll") else "SelectorsIO")
hub.io.close()
hub.io = SelectorsIO(hub._waker.read_fd)
out["fd_waits"] = [backend, first, fd_waits()]

# The hub's module-level __getattr__ (PEP 562): a name loaded on first use, and the usual error.
import corun.hub
try:
    corun.hub.no_such_name
except AttributeError as exc:
    missing = str(exc)
out["lazy_attr"] = [corun.hub.HubStatistics.__module__, missing]
print(json.dumps(out))
"""

MODULES = [
    "_asyncio_state",
    "_event",
    "_hubbound",
    "_hubcounts",
    "_io_base",
    "_io_epoll",
    "_io_selectors",
    "_threadsync",
    "_waiter",
    "_waitqueue",
    "greenlet",
    "hub",
    "lock",
    "queue",
]


def _built() -> bool:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return all((ROOT / "corun" / f"{m}{suffix}").exists() for m in MODULES)


def _run(pure: bool) -> dict[str, Any]:
    proc = run_python(PROGRAM, env={"CORUN_PURE_PYTHON": "1"} if pure else {"CORUN_PURE_PYTHON": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


EXPECTED = {
    "switch_order": ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"],
    "kill": [["getter"], True, "GreenletExit", 0],
    "throw": "caught x",
    "timeout": "timed out",
    "get_timeout": "Empty",
    "with_timeout": "default",
    "error": ["from a task", True],
    "subclasses": [42, 40, True],
    "events": [["set", "woke True", "link True", "failed", "Timeout"], False, True, True, True],
    "hang": True,
    "threads": [[True, True]] * 4,
    "fd_waits": [True, [[0, 1, 2], True, True], [[0, 1, 2], True, True]],
    "lazy_attr": ["corun._hubstats", "module 'corun.hub' has no attribute 'no_such_name'"],
}


def test_pure_python_mode_runs_the_sources() -> None:
    out = _run(pure=True)
    assert out.pop("compiled") is False
    assert out.pop("sources") == sorted(MODULES)
    assert out == EXPECTED


@pytest.mark.skipif(not _built(), reason="the compiled core is not built for this interpreter (make compile)")
def test_compiled_core_runs_when_built_and_behaves_the_same() -> None:
    out = _run(pure=False)
    assert out.pop("compiled") is True
    assert out.pop("sources") == []
    assert out == EXPECTED


@pytest.mark.skipif(not _built(), reason="the compiled core is not built for this interpreter (make compile)")
def test_a_source_edited_after_the_build_runs_every_core_module_from_source(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "corun", tmp_path / "corun", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "import corun, json; print(json.dumps([corun.COMPILED, corun.hub.__file__.endswith('.py')]))"
    env = {"PYTHONPATH": str(tmp_path), "CORUN_PURE_PYTHON": ""}

    def probe_copy() -> list[bool]:
        proc = run_python(probe, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        result: list[bool] = json.loads(proc.stdout)
        return result

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = (tmp_path / "corun" / f"queue{suffix}").stat().st_mtime
    for m in MODULES:  # the copy as built: sources older than their extensions
        os.utime(tmp_path / "corun" / f"{m}.py", (built - 60, built - 60))
    assert probe_copy() == [True, False]
    # One source edited later: none of the group runs compiled, hub.py included.
    os.utime(tmp_path / "corun" / "queue.py", (built + 60, built + 60))
    assert probe_copy() == [False, True]


def test_the_compiled_module_list_is_the_build_list() -> None:
    import corun

    setup = (ROOT / "setup.py").read_text()
    assert sorted(corun.COMPILED_MODULES) == MODULES
    for m in MODULES:
        assert f'"corun/{m}.py"' in setup
