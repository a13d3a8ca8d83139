"""Every program in examples/ runs in a fresh interpreter and prints what it promises.

The examples are parametrized from the directory listing, so a new example is
run (exit status 0, some output, a quiet stderr, a few seconds at most) even
before anyone writes a check for its output. The checks below read the
printed output the way a newcomer would, with wide timing margins.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import os
import re
import runpy
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import PipeLines, process_group, run_process

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))

# Each example should take under ~5 s; the extra margin covers a slow, busy machine.
MAX_SECONDS = 15

# The demo in a smaller configuration than a user sees: 10 pages answered in 0.3 s each.
# Overlap is proven by finishing in under half the sequential 3 s: room for a busy machine.
PAGES = 10
DELAY = 0.3
EXAMPLE_ARGS = {
    "demo.py": ["--pages", str(PAGES), "--delay", str(DELAY)],
    "slow_fast_demo.py": ["--slow", "1"],
}
# These fetch from a web server; the test gives them the demo's slow server, and the page count.
CRAWLERS = {"legacy_crawler.py", "crawl_with_tasks.py", "legacy_threaded_crawler.py"}
# The kernel's thread count, which the threaded crawler reports, is read from /proc.
HAVE_PROC = Path("/proc/self/status").exists()

Checker = Callable[[str], None]
CHECKS: dict[str, Checker] = {}


def checks(name: str) -> Callable[[Checker], Checker]:
    """Register the function that checks the output of ``examples/<name>``."""

    def register(func: Checker) -> Checker:
        CHECKS[name] = func
        return func

    return register


def example_env() -> dict[str, str]:
    """The environment the examples run in: this checkout importable, faulthandler on."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/<name> args...`` from the repository root, as a user would."""
    return run_process(
        [sys.executable, str(EXAMPLES_DIR / name), *args], timeout=60, cwd=ROOT, env=example_env()
    )


def number(pattern: str, text: str) -> float:
    """The number captured by ``pattern``'s first group in ``text``."""
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return float(match.group(1))


def section(text: str, start: str, end: str | None = None) -> str:
    """The part of ``text`` from the line starting with ``start`` to the one starting with ``end``."""
    begin = text.index(start)
    stop = len(text) if end is None else text.index(end, begin)
    return text[begin:stop]


def expected_pages(pages: int) -> str:
    """The line a crawler prints after fetching the first ``pages`` pages of the demo's server."""
    page = runpy.run_path(str(EXAMPLES_DIR / "demo.py"))["page"]
    bodies = [page(n) for n in range(pages)]
    digest = hashlib.sha256(b"".join(bodies)).hexdigest()[:16]
    return f"fetched {pages} pages, {sum(map(len, bodies))} bytes, sha256 {digest}"


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """The demo's slow page server (``demo.py --serve``) in a child process; yields its URL."""
    command = [sys.executable, str(EXAMPLES_DIR / "demo.py"), "--serve", "--delay", str(DELAY)]
    with process_group(command, stdout=subprocess.PIPE, text=True, env=example_env()) as server:
        line = PipeLines(server.stdout).readline(timeout=30)
        assert line.startswith("serving on http://127.0.0.1:"), line
        yield line.split()[-1]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example(name: str, request: pytest.FixtureRequest) -> None:
    args = EXAMPLE_ARGS.get(name, [])
    if name in CRAWLERS:
        args = ["--pages", str(PAGES), request.getfixturevalue("page_server")]
    started = time.monotonic()
    proc = run_example(name, *args)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"examples/{name} exited with {proc.returncode}:\n{proc.stderr}"
    assert proc.stdout.strip(), f"examples/{name} printed nothing"
    assert proc.stderr == "", f"examples/{name} wrote to stderr:\n{proc.stderr}"
    assert elapsed < MAX_SECONDS, f"examples/{name} took {elapsed:.1f} s"
    check = CHECKS.get(name)
    if check is not None:
        check(proc.stdout)


def test_every_check_has_its_example() -> None:
    # A renamed or deleted example must not leave its checks silently unused.
    assert sorted(set(CHECKS) - set(EXAMPLES)) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_explains_itself(name: str) -> None:
    # A newcomer opens the file first: it should say what it shows and how to run it.
    source = (EXAMPLES_DIR / name).read_text()
    doc = ast.get_docstring(ast.parse(source))
    assert doc, f"examples/{name} has no module docstring"
    assert f"python examples/{name}" in doc
    assert 'if __name__ == "__main__":' in source


@checks("interleave.py")
def check_interleave(out: str) -> None:
    names = ["alpha", "beta", "gamma"]
    expected = ["main: spawned 3 tasks; none has run yet"]
    # Round-robin: every task takes step N before any task takes step N+1.
    expected += [f"{name}: step {step} of 3" for step in (1, 2, 3) for name in names]
    expected += [f"{name}: finished" for name in names]
    expected += ["main: all tasks finished: alpha, beta, gamma"]
    assert out.splitlines() == expected


@checks("sync_vs_async.py")
def check_sync_vs_async(out: str) -> None:
    total = number(r"waits adding up to ([\d.]+) s", out)
    longest = number(r"the longest ([\d.]+) s", out)
    sync_time = number(r"^synchronous wall time: +([\d.]+) s", out)
    async_time = number(r"^asynchronous wall time: +([\d.]+) s", out)
    assert 10 * 0.1 <= total <= 10 * 0.3
    assert sync_time >= total - 0.1  # one after another: the waits add up
    assert longest - 0.05 <= async_time < 1.0  # at once: about the longest wait
    assert async_time < sync_time / 3

    def finished(part: str) -> list[tuple[int, float]]:
        return [(int(n), float(d)) for n, d in re.findall(r"task (\d+) done after waiting ([\d.]+) s", part)]

    sync_done = finished(section(out, "synchronous (one after another):", "asynchronous (spawned"))
    async_done = finished(section(out, "asynchronous (spawned", "synchronous wall time"))
    assert [n for n, _ in sync_done] == list(range(10))
    assert sorted(async_done) == sync_done
    # Spawned tasks finish shortest wait first (allowing for timer jitter).
    delays = [d for _, d in async_done]
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(delays))


@checks("asyncio_together.py")
def check_asyncio_together(out: str) -> None:
    # Ten replies of 0.3 s each from an asyncio server to blocking clients, and five
    # 0.3 s blocking calls from a coroutine: at once (under 1 s), not 3 s and 1.5 s.
    assert number(r"10 blocking clients: 10 replies in ([\d.]+) s", out) < 1.0
    assert "first reply: HELLO 0" in out
    assert number(r"5 blocking calls through to_async: ([\d.]+) s", out) < 1.0
    assert "first result: key0 for request-42" in out


@checks("timeouts.py")
def check_timeouts(out: str) -> None:
    lines = out.splitlines()
    assert lines[:-1] == [
        "1. with Timeout(...): timed out after 0.1 seconds",
        "2. Timeout.start_new(...): timed out after 0.1 seconds",
        "3. with Timeout(..., False): left the block silently, result=None",
        "4. with_timeout(..., timeout_value=...): too slow, got '(default)'",
        "4. with_timeout(..., timeout_value=...): in time, got 'value of e'",
        "5. with Timeout(..., TooSlow): caught TooSlow",
        "5. with Timeout(..., TooSlow('...')): caught TooSlow: the lookup of 'g' took too long",
        "6. with Timeout(...): finished in time, got 'value of h'",
    ]
    # Six one-second lookups were each cut short after 0.1 s.
    assert number(r"^total time: ([\d.]+) s", out) < 3


@checks("event.py")
def check_event(out: str) -> None:
    assert out.splitlines() == [
        "waiter 1: waiting for the event",
        "waiter 2: waiting for the event",
        "waiter 3: waiting for the event",
        "main: 3 tasks are waiting; setting the event",
        # One set() wakes them all, first come first served.
        "waiter 1: woke up, event is set=True",
        "waiter 2: woke up, event is set=True",
        "waiter 3: woke up, event is set=True",
        "main: all 3 waiters woke up",
        "main: wait() on the set event returns True",
        "main: wait(timeout=0.05) on the cleared event returns False",
    ]


@checks("asyncresult.py")
def check_asyncresult(out: str) -> None:
    assert out.splitlines() == [
        "consumer 1: waiting for the result",
        "consumer 2: waiting for the result",
        "producer: computed 6 * 7, setting the result",
        "consumer 1: got the value 42",
        "consumer 2: got the value 42",
        "main: the result is still there: 42",
        "consumer 3: waiting for the result",
        "producer: bad input, setting the exception",
        "consumer 3: the producer failed: ValueError: invalid literal for int() with base 10: 'forty-two'",
        "main: get(timeout=0.05) on a result nobody sets raised Timeout",
    ]


@checks("producer_consumer.py")
def check_producer_consumer(out: str) -> None:
    processed = [int(n) for n in re.findall(r"^consumer \d: processed item (\d+)$", out, re.MULTILINE)]
    assert sorted(processed) == list(range(10))  # every item exactly once
    assert f"processed: {list(range(10))}" in out
    # The consumers shared the work, and each one stopped on its sentinel.
    workers = set(re.findall(r"^(consumer \d): processed", out, re.MULTILINE))
    assert workers == {"consumer 1", "consumer 2", "consumer 3"}
    for n in (1, 2, 3):
        assert f"consumer {n}: stopping" in out
    # The queue never held more than its bound, and the bound was reached.
    sizes = [int(n) for n in re.findall(r"\((\d+) waiting in the queue\)", out)]
    assert len(sizes) == 10
    assert max(sizes) <= 3
    assert number(r"^largest queue size seen: (\d+)", out) == 3
    # join() returned only after the last item was processed, before any sentinel.
    lines = out.splitlines()
    finished = lines.index("main: all 10 items processed; stopping the consumers")
    assert max(i for i, line in enumerate(lines) if "processed item" in line) < finished
    assert min(i for i, line in enumerate(lines) if line.endswith(": stopping")) > finished


@checks("bounded_workers.py")
def check_bounded_workers(out: str) -> None:
    running = [int(n) for n in re.findall(r"^worker \d: started \((\d) running\)$", out, re.MULTILINE)]
    assert len(running) == 6
    assert max(running) == 2  # the limit held, and was used
    assert number(r"^max concurrency observed: (\d+)$", out) == 2
    for n in range(1, 7):
        assert f"worker {n}: finished" in out
    # Two at a time means three rounds of 0.1 s: the others really waited their turn.
    assert 0.25 <= number(r"took ([\d.]+) s", out) < 2
    assert "an extra release() raised ValueError" in out


@checks("task_local.py")
def check_task_local(out: str) -> None:
    assert out.splitlines() == [
        # Each task reads back its own user and its own count, despite the interleaving.
        "task for ann: ann saw 1 pages",
        "task for bob: bob saw 2 pages",
        "task for cy: cy saw 3 pages",
        "main: request.user is still 'main', counters.hits is 0",
        "main: request has a 'handler' attribute: False",
    ]


@checks("taskgroup.py")
def check_taskgroup(out: str) -> None:
    succeed = section(out, "1. all children succeed:", "2. one child fails:")
    assert succeed.splitlines()[1:] == [
        "  job-1: done",
        "  job-2: done",
        "  job-3: done",
        "  results: ['job-3 result', 'job-1 result', 'job-2 result']",
    ]

    fails = section(out, "2. one child fails:", "3. a deadline around the group:")
    assert "  flaky: failing" in fails
    assert "  caught in the group: ValueError: flaky could not connect" in fails
    for name in ("slow-1", "slow-2"):
        assert f"  {name}: cancelled" in fails
        assert f"{name}: done" not in out
    # The failure cut the 5 s children short.
    assert number(r"the group ended after ([\d.]+) s", fails) < 2

    deadline = section(out, "3. a deadline around the group:")
    assert "  slow-3: cancelled" in deadline
    assert "  slow-4: cancelled" in deadline
    assert "  children still running: 0" in deadline


@checks("explicit_tasks.py")
def check_explicit_tasks(out: str) -> None:
    sequential = number(r"one after another: +10 downloads took +([\d.]+) s", out)
    concurrent = number(r"corun tasks: +100 downloads took +([\d.]+) s \(100 results\)", out)
    assert number(r"so 100 would take about (\d+) s", out) >= 15
    assert sequential >= 10 * 0.2 - 0.1  # ten waits of 0.2 s, one after another
    assert 0.2 - 0.05 <= concurrent < 1.0  # a hundred waits of 0.2 s, at once
    assert number(r"speed-up: about (\d+)x", out) >= 10


@checks("legacy_crawler.py")
def check_legacy_crawler(out: str) -> None:
    assert out.splitlines()[0] == expected_pages(PAGES)
    assert number(r"^took ([\d.]+) s$", out) >= PAGES * DELAY - 0.05  # one page after another


@checks("crawl_with_tasks.py")
def check_crawl_with_tasks(out: str) -> None:
    assert out.splitlines()[0] == expected_pages(PAGES)
    assert number(r"^took ([\d.]+) s$", out) < PAGES * DELAY / 2  # the waits overlapped


@checks("legacy_threaded_crawler.py")
def check_legacy_threaded_crawler(out: str) -> None:
    assert out.splitlines()[0] == expected_pages(PAGES)
    assert number(r"^took ([\d.]+) s$", out) < PAGES * DELAY / 2  # plain threads overlap too
    if HAVE_PROC:
        # Plain Python: every page on an OS thread of its own, besides the main one.
        assert number(rf"^{PAGES} threads ran on (\d+) OS threads$", out) >= 2


@checks("demo.py")
def check_demo(out: str) -> None:
    fetched = expected_pages(PAGES)
    assert f"fetches {PAGES} pages" in out and f"takes {DELAY} s to answer each one" in out
    plain = section(out, "1. plain python", "2. monkey.patch_all()")
    tasks = section(out, "2. monkey.patch_all()", "3. the unmodified crawler under the runner")
    runner = section(out, "3. the unmodified crawler under the runner", "4. a legacy crawler")
    threaded = section(out, "4. a legacy crawler", "   $ python -m corun legacy_threaded_crawler.py")
    as_tasks = section(out, "   $ python -m corun legacy_threaded_crawler.py", "all five runs")
    assert f"$ python legacy_crawler.py --pages {PAGES} http://127.0.0.1:" in plain
    assert f"$ python crawl_with_tasks.py --pages {PAGES} http://127.0.0.1:" in tasks
    assert f"$ python -m corun legacy_crawler.py --pages {PAGES} http://127.0.0.1:" in runner
    # Every run got the same pages, and the right ones.
    for part in (plain, tasks, runner, threaded, as_tasks):
        assert f"   {fetched}\n" in part
    assert f"all five runs {fetched}\n" in out

    plain_time = number(r"^   took ([\d.]+) s$", plain)
    tasks_time = number(r"^   took ([\d.]+) s$", tasks)
    runner_time = number(r"^   took ([\d.]+) s$", runner)
    assert plain_time >= PAGES * DELAY - 0.05  # ten waits, one after another
    assert DELAY - 0.05 <= tasks_time < PAGES * DELAY / 2  # ten waits at once
    assert runner_time >= PAGES * DELAY - 0.05  # still sequential under the runner
    assert f"1 -> 2: {plain_time:.2f} s became {tasks_time:.2f} s" in out
    assert number(r"about (\d+)x faster", out) >= 2
    assert "3: unchanged" in out and "exited with the same status (0)" in out

    # Threads overlap with or without the runner; under it they are tasks on the one OS thread.
    assert number(r"^   took ([\d.]+) s$", threaded) < PAGES * DELAY / 2
    assert number(r"^   took ([\d.]+) s$", as_tasks) < PAGES * DELAY / 2
    if HAVE_PROC:
        assert number(rf"^   {PAGES} threads ran on (\d+) OS threads$", threaded) >= 2
        assert f"   {PAGES} threads ran on 1 OS thread\n" in as_tasks
        assert "under the runner the threads are tasks:" in out and "s on 1 OS thread." in out


@checks("echo_server.py")
def check_echo_server(out: str) -> None:
    lines = out.splitlines()
    assert re.fullmatch(r"echo server: listening on 127\.0\.0\.1:\d+", lines[0])
    # The stress client, another process, got every byte back, and the server counted the same bytes.
    sent = number(r"^stress client: 200 clients x 20 messages: all 4000 echoes correct, (\d+) bytes", out)
    assert number(r"(\d+) bytes echoed", out) == sent
    assert number(r"served (\d+) connections", out) == 200
    assert number(r"at most (\d+) at once", out) >= 20  # the connections were served side by side
    assert lines[-1] == "echo server: stopped (listener closed: True)"


@checks("echo_stress.py")
def check_echo_stress(out: str) -> None:
    assert re.search(r"^stress client: started an echo server on 127\.0\.0\.1:\d+$", out, re.MULTILINE)
    pattern = r"^stress client: 200 clients x 20 messages: all 4000 echoes correct, \d+ bytes"
    assert re.search(pattern, out, re.MULTILINE)


@checks("chat_server.py")
def check_chat_server(out: str) -> None:
    lines = out.splitlines()
    assert re.fullmatch(r"chat server: listening on 127\.0\.0\.1:\d+", lines[0])
    assert lines[1:] == [
        "ann saw:",
        "  welcome! your name?",
        "  * hello ann; here: nobody yet",
        "  * bob joined",
        "  * cy joined",
        "  [bob] hello ann",
        "  * cy left",
        "  * bob left",
        "  * bye",
        "bob saw:",
        "  welcome! your name?",
        "  * hello bob; here: ann",
        "  * cy joined",
        "  [ann] hi all",
        "  * cy left",
        "  * bye",
        "cy saw:",
        "  welcome! your name?",
        "  * hello cy; here: ann, bob",
        "  [ann] hi all",
        "  [bob] hello ann",
        "  * bye",
        "chat server: stopped; 0 clients left connected",
    ]


@checks("slow_fast_demo.py")
def check_slow_fast_demo(out: str) -> None:
    lines = [line for line in out.splitlines() if re.match(r"[123]\. ", line)]
    assert len(lines) == 3
    for line in lines:
        if "skipped: gunicorn is not installed" in line:
            continue
        assert "while /slow was still sleeping" in line
        assert number(r"/fast answered in ([\d.]+) s", line) < 1.0
        assert number(r"/slow answered in ([\d.]+) s", line) >= 0.9
    assert re.search(r"^every server answered /fast while /slow was sleeping: yes", out, re.MULTILINE)


@checks("slow_fast_app.py")
def check_slow_fast_app(out: str) -> None:
    assert "/fast answered while /slow was still sleeping: yes" in out
    assert number(r"GET /fast .* after ([\d.]+) s", out) < number(r"GET /slow .* after ([\d.]+) s", out)


@checks("slow_fast_serve.py")
def check_slow_fast_serve(out: str) -> None:
    # Run without corun, it explains how to run it.
    assert "python -m corun examples/slow_fast_serve.py" in out
