"""The compiled build keeps finished tasks' frame stacks for new tasks (``corun/_stackcache.c``).

Each program runs in a fresh interpreter, as built (the compiled core where
it was built for this interpreter) and with CORUN_PURE_PYTHON=1, where
the cache is not loaded at all.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.conftest import run_python
from tests.test_compiled import _built

# Whether the compiled build (and with it the cache) is here for this interpreter.
BUILT = _built()
# Frame stacks in chunks of their own exist from 3.11 on; before, the cache installs nothing.
HAS_STACKS = sys.version_info >= (3, 11)

PROGRAM = r"""
import json, sys, threading
import corun
from corun import Event, get_hub, joinall, sleep, spawn

try:
    from corun import _stackcache
except ImportError:
    _stackcache = None

def stats():
    return None if _stackcache is None else _stackcache.stats()

out = {"compiled": corun.COMPILED, "stats": [stats()]}

def square(i):
    return i * i

# One task after another: each can start on the stack the one before left.
out["serial"] = sum(spawn(square, i).get() for i in range(2000))
out["stats"].append(stats())

# 500 tasks parked at once, so 500 stacks in use, then all ended.
event = Event()
woken = []
def parked(i):
    event.wait()
    woken.append(i)
tasks = [spawn(parked, i) for i in range(500)]
sleep(0)
event.set()
joinall(tasks, raise_error=True)
out["burst"] = len(woken)
out["stats"].append(stats())

# A hub in each of two OS threads, spawning and killing tasks side by side.
def in_thread(results, k):
    def worker(i):
        sleep(0)
        return i + k
    total = 0
    for i in range(1500):
        g = spawn(worker, i)
        if i % 7 == 0:
            g.kill()  # killed before it ever ran, or in its sleep
            total += -1 if g.dead else 0
        else:
            total += g.get()
    results[k] = total
    get_hub().destroy()
results = {}
threads = [threading.Thread(target=in_thread, args=(results, k)) for k in (1, 2)]
for t in threads: t.start()
for t in threads: t.join()
out["threads"] = results
out["stats"].append(stats())
print(json.dumps(out))
"""


def _expected_thread_total(k: int) -> int:
    return sum(-1 if i % 7 == 0 else i + k for i in range(1500))


def _run(pure: bool) -> dict[str, Any]:
    proc = run_python(PROGRAM, env={"CORUN_PURE_PYTHON": "1" if pure else ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["serial"] == sum(i * i for i in range(2000))
    assert result["burst"] == 500
    assert result["threads"] == {str(k): _expected_thread_total(k) for k in (1, 2)}
    return result


def test_pure_python_mode_does_not_load_the_cache() -> None:
    out = _run(pure=True)
    assert out["compiled"] is False
    assert out["stats"] == [None] * 4


@pytest.mark.skipif(not BUILT, reason="the compiled core is not built for this interpreter (make compile)")
def test_compiled_tasks_start_on_the_stacks_of_finished_ones_and_keep_at_most_its_bound() -> None:
    out = _run(pure=False)
    assert out["compiled"] is True
    start, serial, burst, threaded = out["stats"]
    if not HAS_STACKS:
        # 3.10: frames are objects, with no stacks to keep; nothing is wrapped.
        assert start["installed"] is False
        assert threaded["reused"] == threaded["released"] == threaded["kept"] == 0
        return
    assert start["installed"] is True
    assert start["chunk_size"] == 16384
    keep = start["keep"]
    # Run one after another, all but the first task or two start on a kept stack.
    assert serial["reused"] - start["reused"] >= 1990, (start, serial)
    assert serial["kept"] <= keep
    # 500 stacks in use at once: when their tasks end, `keep` of them are kept
    # and the rest go back to the system.
    assert burst["kept"] == keep, burst
    assert burst["released"] - serial["released"] >= 500 - keep - 2, (serial, burst)
    # The threads' tasks reused stacks too (each ends before the next starts, killed ones before they start).
    assert threaded["reused"] - burst["reused"] >= 1500, (burst, threaded)
    assert threaded["kept"] <= keep


LEAK_PROGRAM = r"""
import gc, json, os
import corun
from corun import Event, joinall, sleep, spawn

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

sizes = []
for burst in range(6):
    event = Event()
    tasks = [spawn(event.wait) for _ in range(3000)]
    sleep(0)
    event.set()
    joinall(tasks)
    del tasks
    gc.collect()
    sizes.append(rss())
print(json.dumps(sizes))
"""


@pytest.mark.skipif(not BUILT, reason="the compiled core is not built for this interpreter (make compile)")
@pytest.mark.skipif(not HAS_STACKS, reason="before 3.11 there are no frame stacks to keep")
def test_stacks_past_the_bound_are_given_back_burst_after_burst() -> None:
    proc = run_python(LEAK_PROGRAM, env={"CORUN_PURE_PYTHON": ""})
    assert proc.returncode == 0, proc.stderr
    sizes = json.loads(proc.stdout)
    # Each burst holds 3000 stacks of 16 KiB (47 MiB) at its peak; kept past
    # it, five more bursts would add 234 MiB.  What grows is Python's own.
    assert sizes[-1] - sizes[1] < 8 * 1024 * 1024, [s // 1024 for s in sizes]
