"""The exception-group type of the running Python, the one place that knows 3.10 lacks it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["exception_group"]


def exception_group(message: str, errors: Sequence[BaseException]) -> BaseException:
    """A ``BaseExceptionGroup`` of ``errors`` (an ``ExceptionGroup`` when all are ``Exception``).

    On 3.10 the ``exceptiongroup`` backport is imported here, when a group is
    first raised, not with corun: importing it replaces ``sys.excepthook``,
    and a program's own uncaught exceptions would then print differently than
    they do plainly.
    """
    if sys.version_info >= (3, 11):
        return BaseExceptionGroup(message, errors)  # noqa: F821 - builtin on 3.11+
    from exceptiongroup import BaseExceptionGroup as backport

    return backport(message, errors)
