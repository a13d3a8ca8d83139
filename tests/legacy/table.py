"""Print the README's table of the legacy-program corpus: each program plainly and under ``python -m corun``.

Usage: ``python tests/legacy/table.py [program ...]`` from the checkout, with
the interpreter corun is installed for; one run of each program each way.
"""

from __future__ import annotations

import os
import platform
import signal
import sys

from _corpus import PROGRAMS, run, verdict

HEADER = (
    "| program | covers | exit status | under corun | time plain | time corun "
    "| CPU plain | CPU corun | OS threads plain | OS threads corun |"
)


def main(names: list[str]) -> int:
    """Run the programs named (all by default) both ways; print one markdown row each."""
    # Started in the background by a shell without job control, this process
    # ignores SIGINT, and so would each program (exec keeps an ignored signal):
    # a handler here is reset to the default in each of them.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    programs = [p for p in PROGRAMS if not names or p.name in names or p.name.removesuffix(".py") in names]
    print(HEADER)
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    same = 0
    for program in programs:
        plain = run(program, "plain")
        corun = run(program, "corun")
        result = verdict(program, plain, corun)
        same += result == "same"
        cells = [
            f"`{program.name}`",
            program.covers.rstrip("."),
            str(plain.returncode),
            result,
            f"{plain.wall:.2f} s",
            f"{corun.wall:.2f} s",
            f"{plain.cpu:.2f} s",
            f"{corun.cpu:.2f} s",
            str(plain.threads),
            str(corun.threads),
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(
        f"\n{same} of {len(programs)} programs give the same output and exit status in about the same time. "
        f"Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{platform.system()} {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs); one run each way."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
