"""Cooperative twins of blocking stdlib modules, installed as ``corun.patches``.

Each module here depends only on the corun core; ``corun.monkey`` is what puts
them in place of the stdlib's.
"""

__all__: list[str] = []
