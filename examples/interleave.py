"""Three tasks taking turns: ``corun.sleep(0)`` hands control to the next ready task.

All tasks run on one OS thread. A task runs until it does something that
would block (here: ``corun.sleep(0)``, which only means "let the others run"),
then the hub switches to the next task that is ready. Ready tasks run in the
order they became ready, so the interleaving below is the same on every run.

Run it:  python examples/interleave.py
"""

import corun


def worker(name: str, steps: int) -> str:
    """Print one line per step, giving way to the other tasks after each one."""
    for step in range(1, steps + 1):
        print(f"{name}: step {step} of {steps}")
        corun.sleep(0)  # go to the back of the line; the other tasks take a step now
    print(f"{name}: finished")
    return name


def main() -> None:
    # spawn() only schedules a task: nothing runs until the main task blocks.
    tasks = [corun.spawn(worker, name, 3) for name in ("alpha", "beta", "gamma")]
    print("main: spawned 3 tasks; none has run yet")

    # joinall() blocks the main task, which lets the hub run the three tasks.
    corun.joinall(tasks)
    print("main: all tasks finished:", ", ".join(task.value for task in tasks))


if __name__ == "__main__":
    main()
