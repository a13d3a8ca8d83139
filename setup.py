"""The optional compiled build of corun's core: mypyc, when asked for and when it works.

``CORUN_COMPILE=1`` asks for it; without mypyc or a working C compiler the
build says why and installs the pure-Python package, which is the same code.
The metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
# The hot core: the hub, tasks, one way to wait, the primitives built on it.
# corun/_build.py names the same modules (COMPILED_MODULES).
CORE = [
    "corun/_asyncio_state.py",
    "corun/_event.py",
    "corun/_hubbound.py",
    "corun/_hubcounts.py",
    "corun/_io_base.py",
    "corun/_io_epoll.py",
    "corun/_io_selectors.py",
    "corun/_threadsync.py",
    "corun/_waiter.py",
    "corun/_waitqueue.py",
    "corun/greenlet.py",
    "corun/hub.py",
    "corun/lock.py",
    "corun/queue.py",
]


class _OptionalBuildExt(build_ext):
    """Builds every extension of the core or none: a failed C build leaves pure Python behind."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            # The modules share one library; a part of the set would not import.
            for ext in self.extensions:
                name = self.get_ext_filename(ext.name)
                for path in (os.path.join(HERE, name), os.path.join(self.build_lib, name)):
                    if os.path.exists(path):
                        os.remove(path)
            print(
                f"corun: compiled core not built ({exc}); the pure-Python modules are used", file=sys.stderr
            )


def _ext_modules() -> list:  # type: ignore[type-arg]
    if os.environ.get("CORUN_COMPILE") != "1" or os.environ.get("CORUN_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("corun: CORUN_COMPILE=1 but mypyc is not installed; building pure Python", file=sys.stderr)
        return []
    try:
        # One group, so the modules call each other's functions natively; its
        # shared library is corun/_core__mypyc, inside the package.  Named as an
        # explicit group, the build also makes no assumption that it saw every
        # subclass of a class: Python subclasses of Greenlet and Hub (plain
        # classes, as greenlet subclasses must be) then pass the compiled
        # methods' type check, which otherwise accepts the exact class only.
        compiled = mypycify(CORE, opt_level="3", separate=[(CORE, "corun._core")])
    except Exception as exc:  # mypyc refused the sources: the pure build still works
        print(f"corun: mypyc failed ({exc}); building pure Python", file=sys.stderr)
        return []
    # Beside the compiled core: finished tasks' frame stacks kept for new ones.
    return [*compiled, Extension("corun._stackcache", ["corun/_stackcache.c"])]


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _OptionalBuildExt})
