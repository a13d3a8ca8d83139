"""mypyc's class options for the modules of the optional compiled build; a no-op without mypy_extensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:  # an install without mypy: the decorator only speaks to mypyc

        def mypyc_attr(*attrs, **options):
            return lambda cls: cls


__all__ = ["mypyc_attr"]
