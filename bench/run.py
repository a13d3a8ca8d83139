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

The network benchmarks (``echo``, ``http``) are different: the library's
code, under its own monkey patching, talks to a plain-Python peer in another
process (``peers.py``), so their rates are always per wall-clock second, and
each sample also records what share of a CPU the library's process and the
peer used meanwhile; a peer well below 100% was not what set the pace.

The last columns compare corun with gevent and with eventlet so that 1.0 or
more always means corun is at least as good: corun/other for rates,
other/corun for memory.
"""

from __future__ import annotations

import argparse
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

from workloads import BENCHMARKS, CLOCKS, EXIT_NOT_INSTALLED, LIBRARIES, Benchmark

__all__ = ["Cell", "format_value", "main", "ratio"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "workloads.py"
PEERS = HERE / "peers.py"
# The libraries corun is compared with, each in a column of its own.
RIVALS = ("gevent", "eventlet")
WORKER_TIMEOUT = 300.0


@dataclass
class Cell:
    """The samples of one benchmark for one library."""

    samples: list[float] = field(default_factory=list)
    # (wall, cpu) seconds of each sample's measured part, for the JSON report.
    seconds: list[tuple[float, float | None]] = field(default_factory=list)
    # Network benchmarks: the share of one CPU the peer process used.
    peer_cpu: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        """The median sample, or None when there is none."""
        return statistics.median(self.samples) if self.samples else None


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
    parser.add_argument(
        "--bench",
        action="append",
        metavar="KEY",
        help=f"run only these benchmarks ({', '.join(b.key for b in BENCHMARKS)})",
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
    keys = [b.key for b in BENCHMARKS]
    for key in args.bench or ():
        if key not in keys:
            parser.error(f"unknown benchmark {key!r}; choose from {', '.join(keys)}")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _table(
    benches: list[Benchmark], libs: list[str], cells: dict[tuple[str, str], Cell], markdown: bool
) -> str:
    rivals = [lib for lib in RIVALS if lib in libs] if "corun" in libs else []
    header = ["benchmark", "unit", *libs] + [f"corun vs {lib}" for lib in rivals]
    rows = []
    for b in benches:
        medians = {lib: cells[b.key, lib].median for lib in libs}
        row = [b.title, b.unit]
        for lib in libs:
            cell = cells[b.key, lib]
            row.append("error" if cell.error and not cell.samples else format_value(medians[lib], b.unit))
        for lib in rivals:
            r = ratio(b, medians["corun"], medians[lib])
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
        self.benches = [b for b in BENCHMARKS if args.bench is None or b.key in args.bench]
        self.cells = {(b.key, lib): Cell() for b in self.benches for lib in self.libs}
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
                n = b.quick_n if args.quick else b.n
                for lib in order:
                    if lib in self.libs:  # not dropped meanwhile
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
            print(f"FAILED {exc}", file=sys.stderr)
            return
        cell.samples.append(sample["value"])
        wall, cpu = sample["wall_seconds"], sample["cpu_seconds"]
        cell.seconds.append((wall, cpu))
        self.versions[lib] = sample["version"]
        self.versions["greenlet"] = sample["greenlet"]
        shown = format_value(sample["value"], b.unit)
        # A network benchmark times by the wall clock whatever --clock says.
        seconds = wall if sample["clock"] == "wall" else cpu
        line = f"{prefix} {b.key:<14} {lib:<9} {shown:>9}  ({seconds:.2f} s"
        if b.peer is not None:
            peer = sample.get("peer_cpu_share")
            if peer is not None:
                cell.peer_cpu.append(peer)
            line += f"; CPU: {lib} {_percent(cpu, wall)}, peer {_percent(peer)}"
        print(line + ")", file=sys.stderr, flush=True)

    def cpu_use(self, b: Benchmark, lib: str) -> str:
        """How busy a network benchmark kept both processes, as medians over its samples.

        The share of a CPU the library's process used, its CPU time per
        operation (what the wall-clock rate would be on a machine all its
        own, and steadier on a busy one), and the peer's share of a CPU.
        """
        cell = self.cells[b.key, lib]
        measured = [
            (cpu / wall, cpu / (rate * wall))
            for (wall, cpu), rate in zip(cell.seconds, cell.samples, strict=True)
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
        """The median of a cell; None for a library not measured."""
        return self.cells[key, lib].median if lib in self.libs else None

    def footer(self) -> str:
        """Where and how the figures were taken: interpreter, versions, method."""
        args = self.args
        names = [*self.libs, "greenlet"]
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
            method += (
                f", except {', '.join(b.key for b in network)}: per wall-clock second, each library"
                " under its own monkey patching, against a plain-Python peer in another process"
            )
        method += "."
        rivals = [lib for lib in RIVALS if lib in self.libs] if "corun" in self.libs else []
        if rivals:
            method += (
                f" corun vs {'/'.join(rivals)}: >= 1.0 means corun is at least as good"
                " (corun/other for rates, other/corun for bytes)."
            )
        lines.append(method)
        for b in network:
            uses = ", ".join(self.cpu_use(b, lib) for lib in self.libs)
            lines.append(f"{b.key}: CPU use of the library's process (and of its peer): {uses}.")
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
                    },
                    **{
                        f"corun_vs_{lib}": ratio(b, self.median(b.key, "corun"), self.median(b.key, lib))
                        for lib in RIVALS
                    },
                }
                for b in self.benches
            ],
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
    print(_table(run.benches, run.libs, run.cells, run.args.markdown))
    print()
    print(run.footer())
    print(f"Took {time.monotonic() - started:.0f} s.", file=sys.stderr)
    if run.args.json:
        report = run.report([Path(sys.executable).name, "bench/run.py", *argv])
        Path(run.args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
