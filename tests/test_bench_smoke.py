"""The benchmark suite still runs: every workload once, tiny, corun only.

That includes the network benchmarks: corun's patched echo server driven by
the load generator, and requests under corun's patching against the HTTP peer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, run_process

# One row per benchmark the suite promises (title as printed, key in the JSON).
EXPECTED = {
    "sleep0": "sleep(0), 2 tasks",
    "spawn": "spawn + joinall",
    "event": "Event ping-pong",
    "queue": "Queue() put/get",
    "queue1": "Queue(1) hand-off",
    "thread_queue": "threads: queue.Queue ping-pong",
    "thread_lifoqueue": "threads: LifoQueue ping-pong",
    "thread_priorityqueue": "threads: PriorityQueue ping-pong",
    "thread_condition": "threads: Condition ping-pong",
    "thread_event": "threads: Event ping-pong",
    "thread_rlock": "threads: RLock with-loop",
    "thread_semaphore": "threads: Semaphore acquire/release",
    "memory": "idle task memory (RSS)",
    "memory_traced": "idle task memory (tracemalloc)",
    "startup": "start-up: python -m corun empty.py",
    "echo": "echo server, 100 clients",
    "http": "requests.get, 100 tasks",
    "http_session": "Session.get (keep-alive), 100 tasks",
    "stream_echo": "echo on StreamServer, 100 clients",
    "wsgi": "hello WSGI, 50 keep-alive conns",
    "wsgi_p99": "hello WSGI, p99 latency",
}
# The stdlib's threading primitives under patching, also measured in plain Python.
THREADED = {key for key in EXPECTED if key.startswith("thread_")}
# The benchmarks whose other end is a separate process.
NETWORK = {"echo", "http", "http_session", "stream_echo", "wsgi"}
# The echo server's CPU time is read from /proc by its load generator.
HAVE_PROC = Path("/proc/self/stat").exists()

_FIGURE = re.compile(r"^(-?[0-9.]+)\s*(k|M|B|KiB|MiB)?$")


def _figure(cell: str) -> float:
    m = _FIGURE.match(cell)
    assert m is not None, f"not a figure: {cell!r}"
    scale = {"k": 1e3, "M": 1e6, "KiB": 1024.0, "MiB": 1024.0**2}.get(m.group(2) or "", 1.0)
    return float(m.group(1)) * scale


def quick_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``bench/run.py --quick`` with ``args``, from the repository root."""
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", *args]
    return run_process(command, timeout=timeout, cwd=ROOT)


def test_quick_run_reports_every_benchmark_for_corun(tmp_path):
    out = tmp_path / "results.json"
    proc = quick_run("--only", "corun", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # The printed table: columns are separated by at least two spaces.
    rows = {}
    for line in proc.stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] in EXPECTED.values():
            rows[cells[0]] = cells
    assert set(rows) == set(EXPECTED.values()), proc.stdout
    for title, cells in rows.items():
        assert len(cells) == 3, cells  # benchmark, unit, corun: no comparison columns
        assert _figure(cells[2]) > 0, (title, cells)
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "unit", "corun"]
    # Both processes of each network benchmark did measurable work.
    for key in NETWORK if HAVE_PROC else ():
        line = next(line for line in proc.stdout.splitlines() if line.startswith(f"{key}: CPU use"))
        assert re.search(r"corun \d+% = [0-9.]+ us per \w+ \(peer \d+%\)", line), line

    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert report["versions"]["corun"]
    results = {r["key"]: r for r in report["results"]}
    assert set(results) == set(EXPECTED)
    for key, result in results.items():
        corun = result["libs"]["corun"]
        assert corun["error"] is None, (key, corun["error"])
        assert len(corun["samples"]) == 1, key
        assert corun["median"] > 0, key
        assert set(result["libs"]) == {"corun"}, key
        if key in NETWORK:
            assert len(corun["peer_cpu_shares"]) == 1, key
            assert corun["peer_cpu_shares"][0] > 0, key
            ((wall, cpu),) = corun["wall_cpu_seconds"]
            assert wall > 0, key
            assert cpu > 0 or not HAVE_PROC, key


def test_a_benchmark_brings_its_latency_row_and_derived_keys_are_not_selectable(tmp_path):
    refused = quick_run("--only", "corun", "--bench", "wsgi_p99", timeout=30)
    assert refused.returncode == 2, refused.stderr
    assert "unknown benchmark 'wsgi_p99'" in refused.stderr

    out = tmp_path / "results.json"
    proc = quick_run("--only", "corun", "--bench", "wsgi", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["key"]: r for r in json.loads(out.read_text())["results"]}
    # gevent's variants are not measured without gevent: only corun.wsgi's rows.
    assert set(results) == {"wsgi", "wsgi_p99"}
    assert results["wsgi_p99"]["source"] == "wsgi"
    (p99,) = results["wsgi_p99"]["libs"]["corun"]["samples"]
    # A p99 latency in milliseconds, read from the same sample as the rate.
    assert 0 < p99 < 5000
    assert "hello WSGI, p99 latency" in proc.stdout
    assert "Nagle" in proc.stdout


def test_the_plain_reference_measures_only_the_requests_clients_and_the_threads(tmp_path):
    out = tmp_path / "results.json"
    proc = quick_run("--only", "plain", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "unit", "plain"]
    results = {r["key"]: r for r in json.loads(out.read_text())["results"]}
    # Unpatched Python has no tasks to switch: only the client rows run there, the
    # threading rows on real OS threads, and the start-up it is the reference of.
    assert set(results) == {"http", "http_session", "startup", *THREADED}
    for key, result in results.items():
        plain = result["libs"]["plain"]
        assert plain["error"] is None, (key, plain["error"])
        assert plain["median"] > 0, key
        assert result["corun_vs_gevent"] is None, key
    assert "unpatched Python with no runtime" in proc.stdout
    if HAVE_PROC:
        line = next(line for line in proc.stdout.splitlines() if line.startswith("http: CPU use"))
        assert re.search(r"plain \d+% = [0-9.]+ us per request", line), line


def test_asyncio_bridge_benchmark_runs() -> None:
    proc = run_process(
        [sys.executable, str(ROOT / "bench" / "asyncio_bridge.py"), "--quick"], timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line[:40].strip(): line[40:].strip() for line in proc.stdout.splitlines()[1:]}
    assert float(rows["echo round trip, corun shared loop"]) > 0
    assert float(rows["await_ round trip"]) > 0
