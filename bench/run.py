"""Compare corun with gevent (and eventlet) on the same workloads, in one run.

Usage::

    python bench/run.py [--repeat R] [--quick] [--only LIB] [--bench KEY]
                        [--clock cpu|wall] [--json PATH] [--markdown]

Every sample runs in a fresh interpreter (``workloads.py``), so libraries never
share a process and one sample cannot warm the next.  Samples are taken in
rounds (every benchmark for every library, then again), rotating the library
order each round, so slow phases of a noisy machine spread over all columns
instead of landing on one.  The table reports the median of each cell.
Rates are per second of the worker's CPU time unless ``--clock wall``: the
workloads never wait on anything, so on a busy machine CPU time measures the
work while wall time also counts other processes' turns.

The network benchmarks (``echo``, ``http``, ``stream_echo``, ``wsgi``...)
are different: the library's code, under its own monkey patching, talks to a
plain-Python peer in another process (``peers.py``), so their rates are per
wall-clock second, and each sample also records what share of a CPU the
library's process and the peer used meanwhile; a peer well below 100% was
not what set the pace.  The echo servers' rates are per second of the
server process's CPU time instead (read from ``/proc``): a fast server
answers faster than one plain-Python peer asks, and would otherwise be
timed by its peer.  The WSGI load test also reports its p99
latency, in a row of its own; its variants of gevent's servers (pywsgi with
TCP_NODELAY, gunicorn's gevent worker) are compared with corun.wsgi's figures
from the first row.  ``--bench wsgi`` selects those rows too.  The requests
clients are also run in plain unpatched Python, one call after another (the
``plain`` column): the cost of the HTTP stack with no runtime under it.
The start-up row times whole fresh processes running an empty script under
each library's patching, and under plain python, by the wall clock.

Two anchors beyond the runtimes are measured on the rows written for them:
``uvloop`` (the same work as asyncio code on uvloop's loop: ``sleep(0)``,
tasks created and gathered, an asyncio streams echo server) and
``c-epoll`` (a single-threaded C epoll echo server, ``echo_epoll.c``, built
with the machine's C compiler on first use).

The last columns compare corun with gevent, eventlet and uvloop so that 1.0
or more always means corun is at least as good: corun/other for rates,
other/corun for memory and start-up time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads import ANCHORS, BENCHMARKS, CLOCKS, EXIT_NOT_INSTALLED, LIBRARIES, Benchmark

__all__ = ["Cell", "format_value", "main", "ratio"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "workloads.py"
PEERS = HERE / "peers.py"
# The libraries corun is compared with, each in a column of its own (uvloop
# only on the rows it is measured on).
RIVALS = ("gevent", "eventlet", "uvloop")
WORKER_TIMEOUT = 300.0
# What each anchor runs, for the footer (c-epoll's compiler is added to it).
ANCHOR_WORK = {
    "uvloop": "the same work as asyncio code on uvloop's loop (await asyncio.sleep(0);"
    " create_task then gather; an asyncio streams echo server)",
    "c-epoll": "a single-threaded, level-triggered C epoll echo server",
}


@dataclass
class Cell:
    """The samples of one benchmark for one library."""

    samples: list[float] = field(default_factory=list)
    # (wall, cpu) seconds of each sample's measured part, for the JSON report.
    seconds: list[tuple[float, float | None]] = field(default_factory=list)
    # How many operations each sample measured (its rate times its clock's seconds).
    counts: list[float] = field(default_factory=list)
    # Network benchmarks: the share of one CPU the peer process used.
    peer_cpu: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        """The median sample, or None when there is none."""
        return statistics.median(self.samples) if self.samples else None


def _missing(bench: Benchmark) -> list[str]:
    """The modules ``bench`` requires that this interpreter (the workers' one) cannot import."""
    return [name for name in bench.requires if importlib.util.find_spec(name) is None]


def _with_dependents(keys: list[str]) -> list[str]:
    """``keys`` and every row that comes with them: their latency rows and their variants."""
    chosen = set(keys)
    while True:
        more = {b.key for b in BENCHMARKS if {b.source, b.corun_from} & chosen} - chosen
        if not more:
            return [b.key for b in BENCHMARKS if b.key in chosen]
        chosen |= more


class NotInstalled(Exception):
    """The worker could not import the library it was asked to measure."""


def _worker_env() -> dict[str, str]:
    # Measure the corun of this checkout even if another copy is installed.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_sample(lib: str, bench: Benchmark, n: int, clock: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one sample in a fresh interpreter and return what it reported.

    A network benchmark starts its peer, which starts the worker; its clock is
    always the wall clock.

    Raises:
        NotInstalled: the library cannot be imported.
        RuntimeError: the worker failed or printed nothing usable.
    """
    if bench.peer is None:
        command = [str(WORKER), lib, bench.key, str(n), clock]
    else:
        command = [str(PEERS), lib, bench.key, str(n)]
    proc = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode == EXIT_NOT_INSTALLED:
        raise NotInstalled(proc.stderr.strip())
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{lib} {bench.key} exited with status {proc.returncode}:\n{tail}")
    sample: dict[str, Any] = json.loads(lines[-1])
    return sample


def format_value(value: float | None, unit: str) -> str:
    """A figure as a short human-readable string (``482k``, ``1.23M``, ``5.6 KiB``)."""
    if value is None:
        return "-"
    if unit.startswith("bytes"):
        if abs(value) >= 1024 * 1024:
            return f"{value / (1024 * 1024):.3g} MiB"
        if abs(value) >= 1024:
            return f"{value / 1024:.3g} KiB"
        return f"{value:.0f} B"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def ratio(bench: Benchmark, corun: float | None, other: float | None) -> float | None:
    """corun compared with ``other``, oriented so that >= 1.0 means corun is at least as good."""
    if corun is None or other is None or corun <= 0 or other <= 0:
        return None
    return corun / other if bench.higher_is_better else other / corun


def _percent(used: float | None, of: float = 1.0) -> str:
    return "?" if used is None else f"{100 * used / of:.0f}%"


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeat", type=int, help="fresh-process samples per cell (default 5; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small N and one sample: a smoke test")
    parser.add_argument(
        "--only",
        action="append",
        metavar="LIB",
        help=f"measure only these libraries (repeat or comma-separate; from {', '.join(LIBRARIES)})",
    )
    measured = [b.key for b in BENCHMARKS if b.source is None]
    parser.add_argument(
        "--bench",
        action="append",
        metavar="KEY",
        help=f"run only these benchmarks (repeat or comma-separate; from {', '.join(measured)});"
        " a benchmark brings its latency row and its variants along",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="time rates by the process's CPU time (default; steadier on a busy machine) or wall time"
        " (the network benchmarks always use wall time)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every sample and median to PATH")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)

    def split(values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        return [v.strip() for value in values for v in value.split(",") if v.strip()]

    args.only = split(args.only)
    args.bench = split(args.bench)
    for lib in args.only or ():
        if lib not in LIBRARIES:
            parser.error(f"unknown library {lib!r}; choose from {', '.join(LIBRARIES)}")
    for key in args.bench or ():
        if key not in measured:
            parser.error(f"unknown benchmark {key!r}; choose from {', '.join(measured)}")
    if args.bench is not None:
        args.bench = _with_dependents(args.bench)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _table(run: _Run, markdown: bool) -> str:
    libs = run.libs
    rivals = [lib for lib in RIVALS if lib in libs] if "corun" in libs else []
    header = ["benchmark", "unit", *libs] + [f"corun vs {lib}" for lib in rivals]
    rows = []
    for b in run.benches:
        medians = {lib: run.median(b.key, lib) for lib in libs}
        row = [b.title, b.unit]
        for lib in libs:
            cell = run.cells.get((b.key, lib))
            failed = cell is not None and cell.error is not None and not cell.samples
            row.append("error" if failed else format_value(medians[lib], b.unit))
        for lib in rivals:
            r = ratio(b, medians["corun"], medians[lib]) if lib in b.libs else None
            row.append("-" if r is None else f"{r:.2f}")
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        left = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        right = [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


class _Run:
    """The samples of one invocation, collected round by round."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # Always in the same column order, whatever order --only named them in.
        self.libs = [lib for lib in LIBRARIES if args.only is None or lib in args.only]
        # Rows left out, and why, for the footer.
        self.skipped: list[str] = []
        self.benches = []
        for b in BENCHMARKS:
            if args.bench is not None and b.key not in args.bench:
                continue
            if not any(lib in self.libs for lib in b.libs):
                continue  # a variant of a library not measured
            missing = _missing(b)
            if missing:
                if b.source is None:
                    self.skipped.append(f"{b.key} (needs {', '.join(missing)}, not installed)")
                    print(f"skipping {b.key}: {', '.join(missing)} not installed", file=sys.stderr)
                continue
            self.benches.append(b)
        self.cells = {(b.key, lib): Cell() for b in self.benches for lib in self.libs if lib in b.libs}
        self.versions: dict[str, str] = {}
        self.failed = False

    def collect(self) -> None:
        """Take every sample; drop a library that is not installed unless it was asked for.

        Raises:
            NotInstalled: a library named with ``--only`` cannot be imported.
        """
        args, env = self.args, _worker_env()
        for round_no in range(args.repeat):
            # Rotate which library goes first, so none is always measured
            # right after the same neighbour.
            shift = round_no % len(self.libs)
            order = self.libs[shift:] + self.libs[:shift]
            for b in self.benches:
                if b.source is not None:
                    continue  # filled in from the samples of its source
                n = b.quick_n if args.quick else b.n
                for lib in order:
                    if lib in self.libs and lib in b.libs:  # not dropped meanwhile
                        self._sample(lib, b, n, env, f"[{round_no + 1}/{args.repeat}]")

    def _sample(self, lib: str, b: Benchmark, n: int, env: dict[str, str], prefix: str) -> None:
        cell = self.cells[b.key, lib]
        try:
            sample = run_sample(lib, b, n, self.args.clock, env)
        except NotInstalled as exc:
            if self.args.only is not None:
                raise
            print(f"skipping {lib}: {exc}", file=sys.stderr)
            self.libs.remove(lib)
            return
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.failed = True
            cell.error = str(exc)
            for d in self._derived(b):
                self.cells[d.key, lib].error = cell.error
            print(f"FAILED {exc}", file=sys.stderr)
            return
        cell.samples.append(sample["value"])
        wall, cpu = sample["wall_seconds"], sample["cpu_seconds"]
        cell.seconds.append((wall, cpu))
        cell.counts.append(sample["value"] * (wall if sample["clock"] == "wall" else cpu))
        self.versions[lib] = sample["version"]
        self.versions["greenlet"] = sample["greenlet"]
        if "gunicorn" in sample:
            self.versions["gunicorn"] = sample["gunicorn"]
        shown = format_value(sample["value"], b.unit)
        for d in self._derived(b):
            assert d.metric is not None
            figure = sample["metrics"][d.metric]
            self.cells[d.key, lib].samples.append(figure)
            shown += f", {d.metric.removesuffix('_' + d.unit)} {format_value(figure, d.unit)} {d.unit}"
        # A network benchmark times by the wall clock whatever --clock says.
        seconds = wall if sample["clock"] == "wall" else cpu
        line = f"{prefix} {b.key:<14} {lib:<9} {shown:>9}  ({seconds:.2f} s"
        if b.peer is not None:
            peer = sample.get("peer_cpu_share")
            if peer is not None:
                cell.peer_cpu.append(peer)
            line += f"; CPU: {lib} {_percent(cpu, wall)}, peer {_percent(peer)}"
        print(line + ")", file=sys.stderr, flush=True)

    def _derived(self, b: Benchmark) -> list[Benchmark]:
        """The rows whose figures come from the samples of ``b``."""
        return [d for d in self.benches if d.source == b.key]

    def cpu_use(self, b: Benchmark, lib: str) -> str:
        """How busy a network benchmark kept both processes, as medians over its samples.

        The share of a CPU the library's process used, its CPU time per
        operation (what the wall-clock rate would be on a machine all its
        own, and steadier on a busy one), and the peer's share of a CPU.
        """
        cell = self.cells[b.key, lib]
        measured = [
            (cpu / wall, cpu / count)
            for (wall, cpu), count in zip(cell.seconds, cell.counts, strict=True)
            if cpu is not None
        ]
        if not measured:
            own = "CPU not measured"
        else:
            share = statistics.median(m[0] for m in measured)
            micros = 1e6 * statistics.median(m[1] for m in measured)
            noun = b.unit.split("/")[0].removesuffix("s")
            own = f"{_percent(share)} = {micros:.1f} us per {noun}"
        peer = _percent(statistics.median(cell.peer_cpu)) if cell.peer_cpu else "?"
        return f"{lib} {own} (peer {peer})"

    def median(self, key: str, lib: str) -> float | None:
        """The median of a cell; None for a library not measured.

        A variant row's corun figure is the one of the row it names.
        """
        b = next(b for b in BENCHMARKS if b.key == key)
        if lib == "corun" and lib not in b.libs and b.corun_from is not None:
            key = b.corun_from
        cell = self.cells.get((key, lib))
        return cell.median if cell is not None and lib in self.libs else None

    def footer(self) -> str:
        """Where and how the figures were taken: interpreter, versions, method."""
        args = self.args
        names = [*(lib for lib in self.libs if lib not in ("plain", "c-epoll")), "greenlet", "gunicorn"]
        lines = [
            f"Python {platform.python_version()} ({platform.python_implementation()}, "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs); "
            + ", ".join(f"{name} {self.versions[name]}" for name in names if name in self.versions)
        ]
        method = (
            f"Median of {args.repeat} run(s) per cell, each in a fresh process"
            + (" (--quick: small N)" if args.quick else "")
            + f"; rates per second of {'process CPU' if args.clock == 'cpu' else 'wall-clock'} time"
        )
        network = [b for b in self.benches if b.peer is not None]
        if network:
            echoes = [b.key for b in network if b.peer == "echo-load"]
            method += (
                f", except {', '.join(b.key for b in network)}: each library under its own monkey"
                " patching, against a plain-Python peer in another process, per wall-clock second"
                + (f" ({', '.join(echoes)}: per CPU-second of the server's process)" if echoes else "")
            )
        method += "."
        threaded = [b.key for b in self.benches if b.patched]
        if threaded:
            method += (
                f" {', '.join(threaded)}: the stdlib's threading and queue code between threading.Threads,"
                " each library under its own monkey patching"
                + ("; plain: real OS threads, CPU time of the process." if "plain" in self.libs else ".")
            )
        if any("plain" in b.libs for b in network) and "plain" in self.libs:
            method += (
                " plain: the same client code in unpatched Python with no runtime, its 100 tasks run one"
                " after another; its CPU time per request is what the HTTP stack itself costs, the floor"
                " a runtime adds its own cost to."
            )
        rivals = [lib for lib in RIVALS if lib in self.libs] if "corun" in self.libs else []
        if rivals:
            method += (
                f" corun vs {'/'.join(rivals)}: >= 1.0 means corun is at least as good"
                " (corun/other for rates, other/corun for bytes and milliseconds)."
            )
        lines.append(method)
        for b in network:
            uses = ", ".join(self.cpu_use(b, lib) for lib in self.libs if lib in b.libs)
            lines.append(f"{b.key}: CPU use of the library's process (and of its peer): {uses}.")
        keys = {b.key for b in self.benches}
        startup = next((b for b in self.benches if b.key == "startup"), None)
        if startup is not None:
            runs = startup.quick_n if args.quick else startup.n
            lines.append(
                "start-up: wall-clock ms of a whole fresh process running an empty script, the median of"
                f" {runs} runs per sample: python -m corun, python -m gevent.monkey, eventlet.monkey_patch()"
                " then the script (eventlet has no runner), and plain python; bytecode caches allowed."
            )
        if keys & {"wsgi", "wsgi_nodelay", "wsgi_gunicorn"}:
            lines.append(
                "WSGI: corun.wsgi, gevent.pywsgi, eventlet.wsgi with their access logs off, answering"
                " GET / with 13 bytes to 50 keep-alive connections (one request in flight each) from"
                " a plain-Python load generator; latency from a request's send to its answer's last byte."
                " gevent.pywsgi is measured as shipped: it leaves Nagle's algorithm on, so a keep-alive"
                " client can wait for a delayed ACK (about 40 ms on Linux) on each request."
            )
        if any(b.corun_from for b in self.benches if b.source is None) and "corun" in self.libs:
            lines.append(
                "Variant rows (pywsgi + TCP_NODELAY: the same server with Nagle off on every connection;"
                " gunicorn -k gevent: one worker) measure gevent's servers only; their corun column"
                " repeats the corun.wsgi figure they are compared with."
            )
        anchors = [lib for lib in ANCHORS if lib in self.libs]
        if anchors:
            described = "; ".join(f"{lib}: {ANCHOR_WORK[lib]}" for lib in anchors)
            if "c-epoll" in anchors:
                described += f" ({self.versions.get('c-epoll', 'not built')})"
            lines.append(f"Anchors, on the rows written for them: {described}.")
        if self.skipped:
            lines.append(f"Not measured: {'; '.join(self.skipped)}.")
        return "\n".join(lines)

    def report(self, command: list[str]) -> dict[str, Any]:
        """Everything measured, for ``--json``."""
        args = self.args
        return {
            "command": shlex.join(command),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "versions": self.versions,
            "repeat": args.repeat,
            "clock": args.clock,
            "quick": args.quick,
            "results": [
                {
                    "key": b.key,
                    "title": b.title,
                    "unit": b.unit,
                    "n": b.quick_n if args.quick else b.n,
                    "higher_is_better": b.higher_is_better,
                    **({"source": b.source, "metric": b.metric} if b.source is not None else {}),
                    **({"corun_from": b.corun_from} if b.corun_from is not None else {}),
                    "libs": {
                        lib: {
                            "median": self.cells[b.key, lib].median,
                            "samples": self.cells[b.key, lib].samples,
                            "wall_cpu_seconds": self.cells[b.key, lib].seconds,
                            **(
                                {"peer_cpu_shares": self.cells[b.key, lib].peer_cpu}
                                if b.peer is not None
                                else {}
                            ),
                            "error": self.cells[b.key, lib].error,
                        }
                        for lib in self.libs
                        if lib in b.libs
                    },
                    **{
                        f"corun_vs_{lib}": ratio(b, self.median(b.key, "corun"), self.median(b.key, lib))
                        for lib in RIVALS
                    },
                }
                for b in self.benches
            ],
            "skipped": self.skipped,
        }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the table; 0 if every sample succeeded."""
    argv = sys.argv[1:] if argv is None else argv
    run = _Run(_parse_args(argv))
    started = time.monotonic()
    try:
        run.collect()
    except NotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not run.libs:
        print("error: none of the libraries is installed", file=sys.stderr)
        return 2
    print()
    print(_table(run, run.args.markdown))
    print()
    print(run.footer())
    print(f"Took {time.monotonic() - started:.0f} s.", file=sys.stderr)
    if run.args.json:
        report = run.report([Path(sys.executable).name, "bench/run.py", *argv])
        Path(run.args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
