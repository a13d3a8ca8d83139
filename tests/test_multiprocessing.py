"""multiprocessing under ``python -m corun``: unmodified programs, each also run with plain python to compare.

Every program takes its start method on the command line and runs with
fork, spawn and forkserver; the parent's waits (on process-shared locks,
pipes, sockets and child processes) must park only the task that waits.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from .conftest import run_json
from .test_runner import corun, python, same, script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork and forkserver start methods")

METHODS = ["fork", "spawn", "forkserver"]
each_method = pytest.mark.parametrize("method", METHODS)

POOL = """\
import multiprocessing, sys, time

def square(x):
    return x * x

def slow_square(x):
    time.sleep(0.05)
    return x * x

def fail(x):
    raise ValueError(f"bad {x}")

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Pool(4) as pool:
        print("map", pool.map(square, range(10)))
        print("imap_unordered", sorted(pool.imap_unordered(slow_square, range(10))))
        print("imap", list(pool.imap(square, range(5), chunksize=2)))
        print("starmap", pool.starmap(pow, [(2, 3), (3, 2)]))
        results = [pool.apply_async(square, (i,)) for i in range(5)]
        print("apply_async", [r.get(timeout=10) for r in results])
        print("apply", pool.apply(square, (7,)))
        try:
            pool.apply_async(fail, (1,)).get(timeout=10)
        except ValueError as exc:
            print("error", exc)
        done = []
        r = pool.map_async(square, range(3), callback=done.append)
        r.wait(10)
        print("map_async", r.ready(), r.successful(), r.get(), done)
    pool = ctx.Pool(2)
    print("close/join", pool.map(square, [1, 2, 3]))
    pool.close()
    pool.join()
"""

POOL_OUTPUT = """\
map [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
imap_unordered [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
imap [0, 1, 4, 9, 16]
starmap [8, 9]
apply_async [0, 1, 4, 9, 16]
apply 49
error bad 1
map_async True True [0, 1, 4] [[0, 1, 4]]
close/join [1, 4, 9]
"""

PROCESSES = """\
import multiprocessing, sys, time

def produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)

def work(jq, out):
    while True:
        item = jq.get()
        if item is None:
            jq.task_done()
            break
        out.put(item * 10)
        jq.task_done()

def echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(msg.upper())
    conn.send_bytes(b"x" * 200000)  # more than a pipe or socket buffer holds
    conn.close()

def wait_event(ev, flag):
    ev.wait(10)
    flag.value = 1

def add(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, 5))
    p.start()
    items = []
    while (item := q.get(timeout=10)) is not None:
        items.append(item)
    p.join()
    print("Queue", items, p.exitcode)

    jq, out = ctx.JoinableQueue(), ctx.Queue()
    w = ctx.Process(target=work, args=(jq, out))
    w.start()
    for i in range(4):
        jq.put(i)
    jq.put(None)
    jq.join()
    print("JoinableQueue", sorted(out.get(timeout=10) for _ in range(4)))
    w.join()

    a, b = ctx.Pipe()
    e = ctx.Process(target=echo, args=(b,))
    e.start()
    for word in ("one", "two"):
        a.send(word)
        print("Pipe", a.recv())
    a.send(None)
    print("Pipe bytes", len(a.recv_bytes()))
    e.join()

    ev, flag = ctx.Event(), ctx.Value("i", 0)
    pe = ctx.Process(target=wait_event, args=(ev, flag))
    pe.start()
    time.sleep(0.2)
    print("Event before set", flag.value)
    ev.set()
    pe.join()
    print("Event after set", flag.value, ev.is_set())

    lock, counter = ctx.Lock(), ctx.Value("i", 0, lock=False)
    adders = [ctx.Process(target=add, args=(lock, counter, 200)) for _ in range(3)]
    for x in adders:
        x.start()
    for x in adders:
        x.join()
    print("Lock and Value", counter.value, [x.exitcode for x in adders])
"""

PROCESSES_OUTPUT = """\
Queue [0, 1, 2, 3, 4] 0
JoinableQueue [0, 10, 20, 30]
Pipe ONE
Pipe TWO
Pipe bytes 200000
Event before set 0
Event after set 1 True
Lock and Value 600 [0, 0, 0]
"""

MANAGER = """\
import multiprocessing, sys

def fill(d, l, ns, q, lock, i):
    with lock:
        d[i] = i * i
        l.append(i)
        ns.total += i
    q.put(("done", i))

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Manager() as m:
        d, l, ns, q, lock = m.dict(), m.list(), m.Namespace(), m.Queue(), m.Lock()
        ns.total = 0
        ps = [ctx.Process(target=fill, args=(d, l, ns, q, lock, i)) for i in range(4)]
        for p in ps:
            p.start()
        got = sorted(q.get(timeout=10) for _ in ps)
        for p in ps:
            p.join()
        print(sorted(d.items()), sorted(l), ns.total, got)
        ev = m.Event()
        ev.set()
        v = m.Value("i", 3)
        v.value += 1
        print("Event", ev.is_set(), "Value", v.value)
"""

MANAGER_OUTPUT = """\
[(0, 0), (1, 1), (2, 4), (3, 9)] [0, 1, 2, 3] 6 [('done', 0), ('done', 1), ('done', 2), ('done', 3)]
Event True Value 4
"""

EXECUTOR = """\
import concurrent.futures, multiprocessing, sys

def cube(x):
    return x ** 3

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with concurrent.futures.ProcessPoolExecutor(max_workers=3, mp_context=ctx) as ex:
        print(list(ex.map(cube, range(8))))
        fs = [ex.submit(cube, i) for i in range(4)]
        print(sorted(f.result(timeout=10) for f in concurrent.futures.as_completed(fs)))
    print("shut down")
"""

EXECUTOR_OUTPUT = "[0, 1, 8, 27, 64, 125, 216, 343]\n[0, 1, 8, 27]\nshut down\n"

LOGGING = """\
import logging, logging.handlers, multiprocessing, sys

def child(q, i):
    logger = logging.getLogger("child")
    logger.addHandler(logging.handlers.QueueHandler(q))
    logger.setLevel(logging.INFO)
    logger.info("hello from %d", i)

class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    q = ctx.Queue()
    keep = Keep()
    listener = logging.handlers.QueueListener(q, keep)
    listener.start()
    ps = [ctx.Process(target=child, args=(q, i)) for i in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    listener.stop()
    print(sorted(keep.messages))
"""

LOGGING_OUTPUT = "['hello from 0', 'hello from 1', 'hello from 2']\n"

PROGRAMS = {
    "pool": (POOL, POOL_OUTPUT),
    "processes": (PROCESSES, PROCESSES_OUTPUT),
    "manager": (MANAGER, MANAGER_OUTPUT),
    "executor": (EXECUTOR, EXECUTOR_OUTPUT),
    "logging": (LOGGING, LOGGING_OUTPUT),
}


@each_method
@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_as_under_python(tmp_path: Path, name: str, method: str) -> None:
    source, output = PROGRAMS[name]
    script(tmp_path / f"mp_{name}.py", source)  # "logging.py" would shadow the module
    proc = same([f"mp_{name}.py", method], tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, output, "")


POOL_TIMED = """\
import json, multiprocessing, sys, time

def nap(x):
    time.sleep(0.3)
    return x

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(4) as pool:
        pool.map(nap, range(4))  # every worker started and ready
        start = time.monotonic()
        done = pool.map(nap, range(16), chunksize=1)
        print(json.dumps({"seconds": time.monotonic() - start, "done": done == list(range(16))}))
"""


@each_method
def test_a_pool_of_four_overlaps_sixteen_waits(tmp_path: Path, method: str) -> None:
    script(tmp_path / "timed.py", POOL_TIMED)
    proc = corun("timed.py", method, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # One after another: 4.8 s; four at a time: 1.2 s.
    assert out["done"] and out["seconds"] < 2.4


CHILD_AREAS = """\
import json, multiprocessing, sys

def patched():
    from corun import monkey
    return sorted(m for m in ("os", "signal", "socket", "threading", "time") if monkey.is_module_patched(m))

def report(q):
    q.put(patched())

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    q = ctx.Queue()
    p = ctx.Process(target=report, args=(q,))
    p.start()
    child = q.get(timeout=20)
    p.join()
    print(json.dumps({"parent": patched(), "child": child}))
"""


@each_method
@pytest.mark.parametrize("options", [(), ("--no-os", "--no-signal")], ids=["all", "some"])
def test_children_are_patched_as_the_parents_runner_patched_it(
    tmp_path: Path, method: str, options: tuple[str, ...]
) -> None:
    script(tmp_path / "areas.py", CHILD_AREAS)
    proc = corun(*options, "areas.py", method, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["child"] == out["parent"]
    assert ("os" in out["parent"]) is (not options)


SELF_PATCHING = """\
from corun import monkey
monkey.patch_all()

import multiprocessing, sys

def patched(x):
    return x * x, monkey.is_module_patched("socket")

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        print(pool.map(patched, range(3)))
    with ctx.Manager() as m:
        d = m.dict(a=1)
        print(dict(d))
"""


@each_method
def test_a_program_patching_itself_has_its_children_patch_themselves(tmp_path: Path, method: str) -> None:
    # A spawn or forkserver child patches while it imports the main module;
    # the forkserver's server does so after multiprocessing took its copies
    # of os.read and os.write, which patching then replaces.
    script(tmp_path / "itself.py", SELF_PATCHING)
    proc = python("itself.py", method, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "[(0, True), (1, True), (4, True)]\n{'a': 1}\n"


# -- waits that park only their task ------------------------------------------------------

WAITS = {
    "Lock": """
        lock = ctx.Lock()
        def child():
            with lock:
                ready.set()
                time.sleep(1)
        wait = lambda: lock.acquire()
        """,
    "Semaphore": """
        sem = ctx.Semaphore(0)
        def child():
            ready.set()
            time.sleep(1)
            sem.release()
        wait = lambda: sem.acquire()
        """,
    "Event": """
        event = ctx.Event()
        def child():
            ready.set()
            time.sleep(1)
            event.set()
        wait = lambda: event.wait(10)
        """,
    "Queue.get": """
        q = ctx.Queue()
        def child():
            ready.set()
            time.sleep(1)
            q.put("item")
        wait = lambda: q.get(timeout=10)
        """,
    "JoinableQueue.join": """
        jq = ctx.JoinableQueue()
        jq.put("work")
        def child():
            jq.get()
            ready.set()
            time.sleep(1)
            jq.task_done()
        wait = jq.join
        """,
    "Connection.recv": """
        a, b = ctx.Pipe()
        def child():
            ready.set()
            time.sleep(1)
            b.send("message")
        wait = a.recv
        """,
    "Manager proxy": """
        manager = ctx.Manager()
        q = manager.Queue()
        def child():
            ready.set()
            time.sleep(1)
            q.put("item")
        wait = lambda: q.get(timeout=10)
        """,
    "Process.join": """
        def child():
            ready.set()
            time.sleep(1)
        wait = lambda: proc.join()
        """,
}


@pytest.mark.parametrize("kind", WAITS)
def test_a_wait_on_a_child_process_parks_only_the_waiting_task(kind: str) -> None:
    body = textwrap.indent(textwrap.dedent(WAITS[kind]), "    ")
    out = run_json(
        f"""
from corun import monkey
monkey.patch_all()
import json, multiprocessing, threading, time
import corun

ticks = [0]
def tick():
    while True:
        time.sleep(0.02)
        ticks[0] += 1

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
{body}
    proc = ctx.Process(target=child)
    proc.start()
    ready.wait(10)
    threading.Thread(target=tick, daemon=True).start()
    start = time.monotonic()
    wait()
    seconds = time.monotonic() - start
    during = ticks[0]
    proc.join()
    print(json.dumps({{"seconds": seconds, "ticks": during}}))
""",
        timeout=60,
    )
    # About 1 s of waiting, during which a tick every 20 ms went on: about 50.
    assert 0.5 < out["seconds"] < 5
    assert out["ticks"] >= 15


def test_the_runner_starts_children_under_corun_only_for_its_own_interpreter(tmp_path: Path) -> None:
    script(
        tmp_path / "other.py",
        """\
        import json, multiprocessing, subprocess, sys
        from multiprocessing import spawn, util
        from corun import monkey
        if __name__ == "__main__":
            ours = util._args_from_interpreter_flags()
            original = monkey.get_original("multiprocessing.util", "_args_from_interpreter_flags")
            spawn.set_executable(sys.executable + "-elsewhere")
            print(json.dumps({"ours": ours, "other": util._args_from_interpreter_flags(),
                              "recorded": original is subprocess._args_from_interpreter_flags}))
        """,
    )
    proc = corun("--no-dns", "-m", "other", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ours"][-3:] == ["-m", "corun", "--no-dns"]
    assert "corun" not in out["other"] and out["recorded"]


def test_children_start_alike_when_multiprocessing_was_imported_first() -> None:
    out = run_json(
        """
        import json, multiprocessing.util as util
        from corun import monkey
        monkey.patch_all(os=False)
        from corun.monkey._children import start_children_alike
        start_children_alike(["--no-os"])
        print(json.dumps(util._args_from_interpreter_flags()))
        """
    )
    assert out[-3:] == ["-m", "corun", "--no-os"]
