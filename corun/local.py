"""Task-local storage: ``local``, the task-level ``threading.local``.

Each task (a greenlet, including a thread's main one that is no ``Greenlet``)
sees its own attribute dictionary.  The dictionaries are keyed by the task's
id and dropped through a weak reference when the task object goes away, and
for a corun ``Greenlet`` as soon as it finishes, since no code can run in it
afterwards.

Attribute access looks up the current task's dictionary on every access
rather than swapping ``__dict__`` in and out: a property or method of a
subclass may switch tasks half-way through an access, and then a swapped
``__dict__`` would belong to the wrong task.
"""

from __future__ import annotations

import weakref
from typing import Any

from greenlet import getcurrent

from .greenlet import Greenlet

__all__ = ["local"]

_MISSING: Any = object()


def _type_lookup(cls: type, name: str) -> Any:
    """``name`` as found on ``cls`` or its bases, as attribute lookup would; else _MISSING."""
    for base in cls.__mro__:
        attrs = base.__dict__
        if name in attrs:
            return attrs[name]
    return _MISSING


class _LocalImpl:
    """The per-task dictionaries of one ``local`` and the arguments to rebuild them."""

    __slots__ = ("__weakref__", "args", "dicts", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # id(task) -> (weak reference to the task, its attribute dictionary)
        self.dicts: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}
        self.args = args
        self.kwargs = kwargs

    def create_dict(self, task: Any) -> dict[str, Any]:
        key = id(task)
        impl_ref = weakref.ref(self)

        def forget(gone: Any) -> None:
            # Only this task's entry: a later task may reuse the same id.
            impl = impl_ref()
            if impl is not None:
                entry = impl.dicts.get(key)
                if entry is not None and (entry[0] is gone or entry[0]() is gone):
                    del impl.dicts[key]

        d: dict[str, Any] = {}
        self.dicts[key] = (weakref.ref(task, forget), d)
        if isinstance(task, Greenlet):
            task.rawlink(forget)
        return d


def _task_dict(self: local) -> dict[str, Any]:
    """The current task's attribute dictionary, made (and ``__init__`` replayed) on first use."""
    impl: _LocalImpl = object.__getattribute__(self, "_local__impl")
    task = getcurrent()
    entry = impl.dicts.get(id(task))
    if entry is not None:
        return entry[1]
    d = impl.create_dict(task)
    init = type(self).__init__
    if init is not object.__init__:
        try:
            init(self, *impl.args, **impl.kwargs)
        except BaseException:
            impl.dicts.pop(id(task), None)
            raise
    return d


class local:
    """Attributes whose values are private to each task, like ``threading.local``.

    Subclass it to give attributes defaults: the subclass's ``__init__`` runs
    again, with the same arguments, the first time each other task touches
    the object.  Names in a subclass's ``__slots__`` are shared by all tasks,
    as with ``threading.local``.
    """

    __slots__ = ("__weakref__", "_local__impl")

    def __new__(cls, *args: Any, **kwargs: Any) -> local:
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported")
        self = object.__new__(cls)
        impl = _LocalImpl(args, kwargs)
        object.__setattr__(self, "_local__impl", impl)
        # The creating task runs __init__ through the ordinary call, not a replay.
        impl.create_dict(getcurrent())
        return self

    def __getattribute__(self, name: str) -> Any:
        if name == "_local__impl":
            return object.__getattribute__(self, name)
        d = _task_dict(self)
        if name == "__dict__":
            return d
        cls = type(self)
        attr = _type_lookup(cls, name)
        if attr is not _MISSING:
            kind = type(attr)
            # Data descriptors (properties, slots) win over the instance dictionary.
            if hasattr(kind, "__get__") and (hasattr(kind, "__set__") or hasattr(kind, "__delete__")):
                return kind.__get__(attr, self, cls)
        if name in d:
            return d[name]
        if attr is not _MISSING:
            get = getattr(type(attr), "__get__", None)
            return attr if get is None else get(attr, self, cls)
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_local__impl", "__dict__"):
            raise AttributeError(f"{type(self).__name__!r} object attribute {name!r} is read-only")
        d = _task_dict(self)
        attr = _type_lookup(type(self), name)
        if attr is not _MISSING:
            kind = type(attr)
            if hasattr(kind, "__set__"):
                kind.__set__(attr, self, value)
                return
            if hasattr(kind, "__delete__"):
                raise AttributeError(f"{type(self).__name__!r} object attribute {name!r} is read-only")
        d[name] = value

    def __delattr__(self, name: str) -> None:
        if name in ("_local__impl", "__dict__"):
            raise AttributeError(f"{type(self).__name__!r} object attribute {name!r} is read-only")
        d = _task_dict(self)
        attr = _type_lookup(type(self), name)
        if attr is not _MISSING:
            kind = type(attr)
            if hasattr(kind, "__delete__"):
                kind.__delete__(attr, self)
                return
            if hasattr(kind, "__set__"):
                raise AttributeError(f"{type(self).__name__!r} object attribute {name!r} is read-only")
        try:
            del d[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None
