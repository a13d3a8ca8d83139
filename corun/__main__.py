"""``python -m corun [options] script.py [args]``: run a program with the stdlib made cooperative."""

import sys

from corun.monkey.runner import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
