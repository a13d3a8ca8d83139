"""Compare corun's outcomes on CPython's test modules with the reference run (unpatched and gevent).

The reference is a tab-separated file with one row per test of CPython
3.11.7: module, test id, outcome unpatched, outcome under gevent's
``patch_all()``.  This script runs the modules under corun (or reads a run
saved with ``suites.py --json``) and prints, per module: the tests, the
passes unpatched, under gevent and under corun; then every test gevent
passes and corun does not (there should be none), and those that pass
unpatched and not under corun.  A module run only in part (``suites.PARTS``)
is compared on that part.  ``--reference`` may be given more than once (a
later file adds modules, or replaces a module's rows)::

    python tests/stdlib/compare.py --reference OUTCOMES.tsv [--from-json RUN.json] [--markdown]

The reference itself is made from two runs saved by ``suites.py --json``,
one ``--unpatched`` and one ``--gevent``, both with ``--test-timeout 60``::

    python tests/stdlib/compare.py --make-reference OUT.tsv --unpatched-json U.json --gevent-json G.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__:
    from .suites import MODULES, ModuleRun, Outcome, in_part, running
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from suites import (  # type: ignore[import-not-found,no-redef]
        MODULES,
        ModuleRun,
        Outcome,
        in_part,
        running,
    )

__all__ = ["Comparison", "Reference", "compare", "load_reference", "main", "reference_lines"]

# Reference[module][test_id] = (outcome unpatched, outcome under gevent)
Reference = dict[str, dict[str, tuple[str, str]]]


def load_reference(*paths: Path) -> Reference:
    """Read the reference outcomes; ``#`` lines and the header row are skipped.

    A module found in a later file takes that file's rows only.
    """
    reference: Reference = defaultdict(dict)
    for path in paths:
        rows: Reference = defaultdict(dict)
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("#") or line.startswith("module\t"):
                continue
            module, test_id, unpatched, gevent = line.split("\t")
            rows[module][test_id] = (unpatched, gevent)
        reference.update(rows)
    return reference


def reference_lines(unpatched: dict[str, ModuleRun], gevent: dict[str, ModuleRun]) -> list[str]:
    """The reference's rows for the modules of two runs, one unpatched and one under gevent.

    A test collected in one run only gets ``-`` for the other.
    """
    pythons = sorted({run.python for run in [*unpatched.values(), *gevent.values()]})
    lines = [
        f"# CPython {', '.join(pythons)}: each module in a fresh process, by tests/stdlib/suites.py",
        "# (--unpatched, and --gevent: gevent's patch_all()); outcomes as in suites.py, '-' = not collected.",
        "module\ttest\tunpatched\tgevent",
    ]
    for module in sorted(set(unpatched) | set(gevent)):
        plain, under_gevent = unpatched.get(module), gevent.get(module)
        plain_outcomes = plain.outcomes if plain else {}
        gevent_outcomes = under_gevent.outcomes if under_gevent else {}
        for test_id in sorted(set(plain_outcomes) | set(gevent_outcomes)):
            row = [module, test_id]
            for outcomes in (plain_outcomes, gevent_outcomes):
                outcome = outcomes.get(test_id)
                row.append(outcome.outcome if outcome else "-")
            lines.append("\t".join(row))
    return lines


def _load_runs(path: Path) -> dict[str, ModuleRun]:
    runs = {}
    for data in json.loads(path.read_text(encoding="utf-8")):
        outcomes = {test_id: Outcome(**o) for test_id, o in data.pop("outcomes").items()}
        run = ModuleRun(**data, outcomes=outcomes)
        runs[run.module] = run
    return runs


def _last_line(detail: str) -> str:
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass
class Comparison:
    """The table, and the tests corun does not pass that the reference run passed."""

    rows: list[list[str]]  # a header, one row per module, a total
    behind_gevent: list[str] = field(default_factory=list)  # passed under gevent (should be none)
    behind_unpatched: list[str] = field(default_factory=list)  # passed unpatched


def _why(test_id: str, run: ModuleRun) -> str:
    ours = run.outcomes.get(test_id)
    if ours is None:
        return f"{test_id}: not collected under corun"
    return f"{test_id}: {ours.outcome}: {_last_line(ours.detail)}"


def compare(reference: Reference, runs: dict[str, ModuleRun]) -> Comparison:
    """Count the passes per module, and list the tests where corun is behind the reference run."""
    header = ["module", "tests", "unpatched passes", "gevent passes", "corun passes"]
    result = Comparison(rows=[header])
    for module in MODULES:
        run = runs.get(module)
        ref = {test_id: row for test_id, row in reference.get(module, {}).items() if in_part(module, test_id)}
        if run is None:
            continue
        corun_passes = run.count("pass")
        if not ref:
            result.rows.append([module, str(len(run.outcomes)), "-", "-", str(corun_passes)])
            continue
        unpatched = sum(1 for u, _ in ref.values() if u == "pass")
        gevent = sum(1 for _, g in ref.values() if g == "pass")
        result.rows.append([module, str(len(ref)), str(unpatched), str(gevent), str(corun_passes)])
        for test_id, (unpatched_outcome, gevent_outcome) in sorted(ref.items()):
            if unpatched_outcome == "-" and gevent_outcome == "-":
                continue
            ours = run.outcomes.get(test_id)
            if ours is not None and ours.outcome == "pass":
                continue
            if gevent_outcome == "pass":
                result.behind_gevent.append(_why(test_id, run))
            if unpatched_outcome == "pass":
                result.behind_unpatched.append(_why(test_id, run))
    # Totals over the modules the reference has, so that the columns compare.
    in_reference = [row for row in result.rows[1:] if "-" not in row]
    result.rows.append(
        ["total"] + [str(sum(int(row[i]) for row in in_reference)) for i in range(1, len(header))]
    )
    return result


def _format(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    """Print the comparison; exit status 1 if corun fails a test gevent passes."""
    parser = argparse.ArgumentParser(description="Compare corun's outcomes with the reference run.")
    parser.add_argument(
        "--reference", action="append", type=Path, help="the reference outcomes (TSV); repeatable"
    )
    parser.add_argument("--from-json", type=Path, help="a run saved by suites.py --json (else run now)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--make-reference", type=Path, help="write a reference TSV from the two runs below")
    parser.add_argument("--unpatched-json", type=Path, help="with --make-reference: the unpatched run")
    parser.add_argument("--gevent-json", type=Path, help="with --make-reference: the run under gevent")
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    args = parser.parse_args(argv)

    if args.make_reference:
        if not (args.unpatched_json and args.gevent_json):
            parser.error("--make-reference needs --unpatched-json and --gevent-json")
        lines = reference_lines(_load_runs(args.unpatched_json), _load_runs(args.gevent_json))
        args.make_reference.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return 0
    if not args.reference:
        parser.error("--reference is required")
    reference = load_reference(*args.reference)
    if args.from_json:
        runs = _load_runs(args.from_json)
    else:
        if sys.version_info[:2] != (3, 11):
            print(
                f"note: the reference is for Python 3.11; this is {sys.version_info[0]}.{sys.version_info[1]}"
            )
        with running(args.modules) as futures:
            runs = {module: future.result() for module, future in futures.items()}
    runs = {module: run for module, run in runs.items() if module in args.modules and not run.unavailable}

    result = compare(reference, runs)
    print(_format(result.rows, args.markdown))
    if result.behind_unpatched:
        print(f"\n{len(result.behind_unpatched)} test(s) pass unpatched and not under corun:")
        for line in result.behind_unpatched:
            print(f"  {line}")
    if result.behind_gevent:
        print(f"\n{len(result.behind_gevent)} test(s) pass under gevent and not under corun:")
        for line in result.behind_gevent:
            print(f"  {line}")
        return 1
    print("\ncorun passes every test gevent passes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
