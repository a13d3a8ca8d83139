"""Keeps the frame stacks of finished tasks for the next tasks to start with (``_stackcache.c``)."""

def install() -> bool:
    """Keep finished tasks' frame stacks for new ones; True where there are such stacks (3.11+)."""

def stats() -> dict[str, bool | int]:
    """The cache's state: installed, chunk_size, keep, kept, and the chunks reused and released so far."""
