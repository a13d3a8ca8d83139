"""Cooperative twin of grpcio: its completion-queue waits park only the calling task.

What it sets, and why that is enough, is ``corun.grpc``'s to say; this twin
only has ``monkey`` make those settings, recording what each replaced, now
or once the program imports grpc (patching never imports it).  A grpcio
this integration was not tested with is left as it is, with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

__target__ = "grpc"
__installed_on_import__ = "grpc"
# The settings are made by _after_patch: they are not attributes of grpc itself.
__implements__: list[str] = []
__all__: list[str] = []


def _after_patch(target: Any) -> list[tuple[Any, ...]]:
    """The settings of ``corun.grpc.changes()``, for ``monkey`` to make and record."""
    # Imported here, once grpc is: patching a program that never uses grpc
    # does not load the thread pool this needs.
    from corun import grpc as corun_grpc

    if corun_grpc.is_initialized():
        # corun.grpc.init() was called first: its settings stand.
        return []
    try:
        return list(corun_grpc.changes())
    except corun_grpc.GrpcNotSupported as exc:
        warnings.warn(f"{exc} grpc is left blocking.", RuntimeWarning, stacklevel=2)
        return []
