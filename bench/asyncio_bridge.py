"""asyncio on corun's hub against plain asyncio and uvloop: echo round trips and await_ latency.

Usage::

    python bench/asyncio_bridge.py [--repeat R] [--quick]

Every sample runs in a fresh interpreter.  ``echo``: an asyncio streams echo
server and one client on the same loop exchange 64-byte messages over
loopback, one at a time, on corun's shared loop (under ``patch_all``), on
asyncio's own loop and on uvloop's; the figure is microseconds per round trip.
``await_``: a corun task calls ``corun.await_`` on a coroutine that returns at
once, the cost of crossing from blocking code to the loop and back.  The
table reports the median of each cell.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ECHO = """
import asyncio, json, sys, time
N = int(sys.argv[1])
LOOP = sys.argv[2]

async def handle(reader, writer):
    while data := await reader.read(64):
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    message = b"x" * 64
    t0 = time.perf_counter()
    for _ in range(N):
        writer.write(message)
        await writer.drain()
        await reader.readexactly(64)
    elapsed = time.perf_counter() - t0
    writer.close()
    server.close()
    return elapsed

if LOOP == "corun":
    from corun import monkey; monkey.patch_all()
    import corun.asyncio
    elapsed = corun.asyncio.run(main())
elif LOOP == "uvloop":
    import uvloop
    elapsed = uvloop.run(main())
else:
    elapsed = asyncio.run(main())
print(json.dumps(elapsed / N * 1e6))
"""

_AWAIT = """
import json, sys, time
import corun
N = int(sys.argv[1])

async def nothing():
    return None

corun.await_(nothing())  # the shared loop is started
t0 = time.perf_counter()
for _ in range(N):
    corun.await_(nothing())
print(json.dumps((time.perf_counter() - t0) / N * 1e6))
"""


def sample(source: str, *args: str) -> float | None:
    """Run one sample in a fresh interpreter; its figure, or None if its library is missing."""
    proc = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            return None
        raise RuntimeError(proc.stderr)
    return float(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per cell (median reported)")
    parser.add_argument("--quick", action="store_true", help="tiny runs, to check the script works")
    args = parser.parse_args(argv)
    n = 200 if args.quick else 20000
    repeat = 1 if args.quick else args.repeat
    rows = [
        ("echo round trip, corun shared loop", _ECHO, (str(n), "corun")),
        ("echo round trip, asyncio", _ECHO, (str(n), "asyncio")),
        ("echo round trip, uvloop", _ECHO, (str(n), "uvloop")),
        ("await_ round trip", _AWAIT, (str(n),)),
    ]
    samples: dict[str, list[float]] = {title: [] for title, _, _ in rows}
    for _ in range(repeat):  # rounds, so a slow phase of the machine spreads over every row
        for title, source, extra in rows:
            value = sample(source, *extra)
            if value is not None:
                samples[title].append(value)
    print(f"{'benchmark':40} {'us per round trip (median of ' + str(repeat) + ')':>34}")
    for title, values in samples.items():
        shown = f"{statistics.median(values):.1f}" if values else "not installed"
        print(f"{title:40} {shown:>34}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
