"""Task-local storage: one ``local`` object, different attributes in each task.

Attributes set on a ``corun.local.local`` object are visible only to the task
that set them, the way ``threading.local`` works for threads. Useful for
per-request state (the current user, a database connection) in code that
cannot pass it around explicitly.

Run it:  python examples/task_local.py
"""

import corun
from corun.local import local

request = local()


class Counters(local):
    """A subclass of local: ``__init__`` runs again in each task that uses it."""

    def __init__(self) -> None:
        self.hits = 0


counters = Counters()


def handle(user: str, pages: int) -> str:
    """Serve some pages for one user; remember the user task-locally."""
    request.user = user  # seen by this task only
    request.handler = f"handle({user!r})"  # an attribute the main task never sets
    for _ in range(pages):
        counters.hits += 1  # each task starts from its own hits = 0
        corun.sleep(0)  # let the other tasks run and set *their* attributes
    # Other tasks changed request.user and counters.hits meanwhile, but not ours.
    summary = f"{request.user} saw {counters.hits} pages"
    print(f"task for {user}: {summary}")
    return summary


def main() -> None:
    request.user = "main"
    tasks = [corun.spawn(handle, user, pages) for user, pages in [("ann", 1), ("bob", 2), ("cy", 3)]]
    corun.joinall(tasks)
    # The main task's attributes were never touched by the others.
    print(f"main: request.user is still {request.user!r}, counters.hits is {counters.hits}")
    # An attribute set only inside the tasks does not exist in the main task.
    print(f"main: request has a 'handler' attribute: {hasattr(request, 'handler')}")


if __name__ == "__main__":
    main()
