"""The benchmark suite still runs: every workload once, tiny, corun only.

That includes the network benchmarks: corun's patched echo server driven by
the load generator, and requests under corun's patching against the HTTP peer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    "echo5000": "echo server, 5000 clients",
    "http": "requests.get, 100 tasks",
    "http_session": "Session.get (keep-alive), 100 tasks",
    "stream_echo": "echo on StreamServer, 100 clients",
    "wsgi": "hello WSGI, 50 keep-alive conns",
    "wsgi_p99": "hello WSGI, p99 latency",
}
# The stdlib's threading primitives under patching, also measured in plain Python.
THREADED = {key for key in EXPECTED if key.startswith("thread_")}
# The benchmarks whose other end is a separate process.
NETWORK = {"echo", "echo5000", "http", "http_session", "stream_echo", "wsgi"}
# Rated per CPU-second of the server's process.
ECHOES = {"echo", "echo5000", "stream_echo"}
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
    if HAVE_PROC:
        for key in ECHOES:
            # The rate is the replies counted over the server's CPU seconds, not the wall's.
            line = next(line for line in proc.stdout.splitlines() if line.startswith(f"{key}: CPU use"))
            micros = float(re.search(r"= ([0-9.]+) us per message", line).group(1))
            assert results[key]["libs"]["corun"]["median"] == pytest.approx(1e6 / micros, rel=0.01), key


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


def _anchored_rows() -> dict[str, set[str]]:
    """The rows each anchor is measured on, as the benchmark list declares them."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import workloads
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rows: dict[str, set[str]] = {anchor: set() for anchor in workloads.ANCHORS}
    for bench in workloads.BENCHMARKS:
        for anchor in set(bench.libs) & set(workloads.ANCHORS):
            rows[anchor].add(bench.key)
    # Every row an anchor is listed on has the anchor's own workload, and no other row does.
    assert {(lib, key) for lib, keys in rows.items() for key in keys} == set(workloads.ANCHORED)
    return rows


def test_the_anchors_measure_their_own_workloads_on_their_rows_only(tmp_path):
    rows = _anchored_rows()
    assert rows == {"uvloop": {"sleep0", "spawn", "echo", "echo5000"}, "c-epoll": {"echo", "echo5000"}}
    out = tmp_path / "results.json"
    proc = quick_run("--only", "uvloop,c-epoll", "--json", str(out))
    if shutil.which(os.environ.get("CC", "cc")) is None:
        # Asked for by name and impossible to build: said so, and nothing measured.
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "no C compiler" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark"))
    # No corun, so no comparison columns.
    assert header.split() == ["benchmark", "unit", "uvloop", "c-epoll"]
    report = json.loads(out.read_text())
    results = {r["key"]: r for r in report["results"]}
    assert set(results) == rows["uvloop"] | rows["c-epoll"]
    for key, result in results.items():
        measured = {lib for lib, keys in rows.items() if key in keys}
        assert set(result["libs"]) == measured, key
        for lib in measured:
            cell = result["libs"][lib]
            assert cell["error"] is None, (key, lib, cell["error"])
            assert cell["median"] > 0, (key, lib)
    assert report["versions"]["uvloop"]
    # The C server was built by the machine's compiler, which the footer names.
    assert report["versions"]["c-epoll"] in proc.stdout
    assert "single-threaded, level-triggered C epoll echo server" in proc.stdout


def test_corun_is_compared_with_uvloop_where_uvloop_runs(tmp_path):
    out = tmp_path / "results.json"
    proc = quick_run("--only", "corun,uvloop", "--bench", "spawn,queue", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "unit", "corun", "uvloop", "corun", "vs", "uvloop"]
    results = {r["key"]: r for r in json.loads(out.read_text())["results"]}
    spawn = results["spawn"]
    assert spawn["corun_vs_uvloop"] == pytest.approx(
        spawn["libs"]["corun"]["median"] / spawn["libs"]["uvloop"]["median"]
    )
    # A row uvloop has no workload for is measured for corun alone, and compared with nothing.
    assert set(results["queue"]["libs"]) == {"corun"}
    assert results["queue"]["corun_vs_uvloop"] is None
    queue_row = next(line for line in proc.stdout.splitlines() if line.startswith("Queue() put/get"))
    assert re.split(r"\s{2,}", queue_row.strip())[3:] == ["-", "-"]


def test_asyncio_bridge_benchmark_runs() -> None:
    proc = run_process(
        [sys.executable, str(ROOT / "bench" / "asyncio_bridge.py"), "--quick"], timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line[:40].strip(): line[40:].strip() for line in proc.stdout.splitlines()[1:]}
    assert float(rows["echo round trip, corun shared loop"]) > 0
    assert float(rows["await_ round trip"]) > 0
