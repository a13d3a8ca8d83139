"""Explicit cooperative code: many tasks waiting at the same time, on one thread.

Each "download" below waits 0.2 s with ``corun.sleep``, the way a real one
waits for the network. Called one after another, the waits add up. Spawned as
corun tasks, they overlap: a hundred downloads take about as long as one. No
patching is involved: the waiting is corun's own.

Run it:  python examples/explicit_tasks.py
"""

import time

import corun

JOBS = 100
SEQUENTIAL_SAMPLE = 10  # enough to measure the one-after-another rate in ~2 s
LATENCY = 0.2  # seconds each simulated download waits


def download(job: int) -> int:
    """Simulate fetching one page: wait for the "network", return its size."""
    corun.sleep(LATENCY)  # a real program would read a socket here
    return 1000 + job


def one_after_another(jobs: int) -> tuple[float, list[int]]:
    """Plain function calls: each job starts when the previous one has finished."""
    start = time.perf_counter()
    sizes = [download(job) for job in range(jobs)]
    return time.perf_counter() - start, sizes


def all_at_once(jobs: int) -> tuple[float, list[int]]:
    """One task per job: all of them wait at the same time."""
    start = time.perf_counter()
    tasks = [corun.spawn(download, job) for job in range(jobs)]
    corun.joinall(tasks, raise_error=True)
    sizes = [task.get() for task in tasks]
    return time.perf_counter() - start, sizes


def main() -> None:
    print(f"explicit corun tasks: {JOBS} simulated downloads, each waiting {LATENCY} s")
    print()

    seq_time, _ = one_after_another(SEQUENTIAL_SAMPLE)
    per_job = seq_time / SEQUENTIAL_SAMPLE
    print(f"one after another: {SEQUENTIAL_SAMPLE:3d} downloads took {seq_time:5.2f} s")
    print(f"                   so {JOBS} would take about {per_job * JOBS:.0f} s")

    con_time, sizes = all_at_once(JOBS)
    print(f"corun tasks:       {JOBS:3d} downloads took {con_time:5.2f} s ({len(sizes)} results)")
    print()

    speed_up = per_job * JOBS / con_time
    print(f"speed-up: about {speed_up:.0f}x, on one thread, with ordinary function calls")


if __name__ == "__main__":
    main()
