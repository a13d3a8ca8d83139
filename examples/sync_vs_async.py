"""The same ten tasks run one after another, then all at once.

Each task waits a random 0.1-0.3 s with ``corun.sleep``, standing in for a
network call or any other wait. Run one after another, the waits add up
(about 2 s). Spawned as tasks, they overlap: the whole batch takes about as
long as the slowest task (about 0.3 s), and tasks finish shortest wait first.

Run it:  python examples/sync_vs_async.py
"""

import random
import time

import corun

# A fixed seed makes both runs wait for exactly the same durations.
_rng = random.Random(2024)
DELAYS = [round(_rng.uniform(0.1, 0.3), 3) for _ in range(10)]


def task(number: int, delay: float) -> int:
    """Wait ``delay`` seconds, as if waiting for a reply, and report it."""
    corun.sleep(delay)  # blocks this task only; the hub runs the others meanwhile
    print(f"  task {number} done after waiting {delay:.3f} s")
    return number


def run_synchronously() -> float:
    """Call the tasks one after another; return the wall time."""
    start = time.perf_counter()
    for number, delay in enumerate(DELAYS):
        task(number, delay)
    return time.perf_counter() - start


def run_asynchronously() -> float:
    """Spawn every task, then wait for all of them; return the wall time."""
    start = time.perf_counter()
    tasks = [corun.spawn(task, number, delay) for number, delay in enumerate(DELAYS)]
    corun.joinall(tasks)
    return time.perf_counter() - start


def main() -> None:
    print(f"10 tasks, waits adding up to {sum(DELAYS):.2f} s, the longest {max(DELAYS):.2f} s")
    print("synchronous (one after another):")
    sync_time = run_synchronously()
    print("asynchronous (spawned, then joined):")
    async_time = run_asynchronously()
    print(f"synchronous wall time:  {sync_time:.2f} s")
    print(f"asynchronous wall time: {async_time:.2f} s")
    print(f"speed-up: {sync_time / async_time:.1f}x")


if __name__ == "__main__":
    main()
