"""Task-local storage: isolation, subclassing like threading.local, freeing."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest
from greenlet import greenlet as RawGreenlet

from corun import joinall, sleep, spawn
from corun.hub import _peek_hub
from corun.local import local


class Thing:
    """Something a weak reference can watch."""


def test_each_task_sees_its_own_attributes() -> None:
    data = local()
    data.name = "main"

    def task(name: str) -> tuple[bool, str, str]:
        had = hasattr(data, "name")
        data.name = name
        sleep(0)  # the others set theirs meanwhile
        return had, data.name, data.__dict__["name"]

    tasks = [spawn(task, f"t{i}") for i in range(5)]
    joinall(tasks)
    assert [t.value for t in tasks] == [(False, f"t{i}", f"t{i}") for i in range(5)]
    assert data.name == "main"
    assert vars(data) == {"name": "main"}


def test_missing_attribute_and_delete() -> None:
    data = local()
    with pytest.raises(AttributeError, match="no attribute 'x'"):
        data.x  # noqa: B018
    data.x = 1
    del data.x
    with pytest.raises(AttributeError):
        del data.x
    assert getattr(data, "x", "default") == "default"


def test_base_local_refuses_arguments() -> None:
    with pytest.raises(TypeError):
        local(1)
    with pytest.raises(TypeError):
        local(a=1)


def test_dict_and_impl_are_read_only() -> None:
    data = local()
    with pytest.raises(AttributeError):
        data.__dict__ = {}
    with pytest.raises(AttributeError):
        data._local__impl = None


class Defaults(local):
    inits = 0
    colour = "red"  # a class attribute, shadowed per task by an instance one

    def __init__(self, size: int, *, label: str = "") -> None:
        type(self).inits += 1
        self.size = size
        self.label = label
        self.items: list[int] = []

    @property
    def double(self) -> int:
        return self.size * 2

    def add(self, x: int) -> int:
        self.items.append(x)
        return len(self.items)


def test_subclass_init_is_replayed_per_task_with_the_same_arguments() -> None:
    Defaults.inits = 0
    data = Defaults(3, label="L")
    assert Defaults.inits == 1
    data.size = 10
    data.add(1)

    def task() -> tuple[int, str, list[int], int, int]:
        result = (data.size, data.label, data.items, data.double, data.add(5))
        data.add(6)  # no second replay in the same task
        return result

    tasks = [spawn(task) for _ in range(3)]
    joinall(tasks)
    assert [t.value for t in tasks] == [(3, "L", [5, 6], 6, 1)] * 3
    assert Defaults.inits == 4
    assert (data.size, data.items, data.double) == (10, [1], 20)


def test_instance_attribute_shadows_class_attribute_per_task() -> None:
    data = Defaults(1)
    data.colour = "blue"
    assert spawn(lambda: data.colour).get() == "red"
    assert data.colour == "blue"
    del data.colour
    assert data.colour == "red"


def test_failing_replayed_init_is_retried_next_time() -> None:
    class Flaky(local):
        fail = False

        def __init__(self) -> None:
            if type(self).fail:
                raise RuntimeError("init failed")
            self.ok = True

    data = Flaky()

    def task() -> Any:
        with pytest.raises(RuntimeError):
            data.ok  # noqa: B018
        Flaky.fail = False
        return data.ok

    Flaky.fail = True
    assert spawn(task).get() is True


class Slotted(local):
    __slots__ = ("shared",)

    def __init__(self) -> None:
        self.mine = "own"


def test_slots_are_shared_by_all_tasks_like_threading_local() -> None:
    data = Slotted()
    data.shared = "from main"
    data.mine = "main's"

    def task() -> tuple[str, str]:
        seen = (data.shared, data.mine)
        data.shared = "from task"
        return seen

    assert spawn(task).get() == ("from main", "own")
    assert data.shared == "from task"
    assert data.mine == "main's"


def test_slots_behave_as_for_threading_local() -> None:
    # The same class shape on threading.local, for comparison across threads.
    class TSlotted(threading.local):
        __slots__ = ("shared",)

    tdata = TSlotted()
    tdata.shared = 1
    tdata.mine = 1
    seen: list[Any] = []

    def thread() -> None:
        seen.append((getattr(tdata, "shared", None), getattr(tdata, "mine", None)))

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    data = Slotted()
    data.shared = 1
    data.mine = 1

    def task() -> tuple[Any, Any]:
        return (getattr(data, "shared", None), getattr(data, "mine", "own"))

    assert seen == [(1, None)]
    assert spawn(task).get() == (1, "own")


def test_getattr_hook_of_a_subclass_is_used() -> None:
    class Fallback(local):
        def __getattr__(self, name: str) -> str:
            return f"computed {name}"

    data = Fallback()
    data.real = "real"
    assert data.real == "real"
    assert data.other == "computed other"


def test_a_switch_inside_a_property_keeps_each_task_on_its_own_dict() -> None:
    class Slow(local):
        def __init__(self) -> None:
            self.value = 0

        @property
        def slow_value(self) -> int:
            sleep(0)  # another task accesses the same object here
            return self.value  # type: ignore[no-any-return]

    data = Slow()

    def task(n: int) -> int:
        data.value = n
        return data.slow_value

    tasks = [spawn(task, n) for n in range(1, 6)]
    joinall(tasks)
    assert [t.value for t in tasks] == [1, 2, 3, 4, 5]


def test_data_of_a_finished_task_is_freed_even_while_the_task_object_lives() -> None:
    data = local()
    refs: list[weakref.ref[Thing]] = []

    def task() -> None:
        thing = Thing()
        refs.append(weakref.ref(thing))
        data.thing = thing

    g = spawn(task)
    g.join()
    sleep(0)  # the task's links run on the hub's next pass
    gc.collect()
    assert refs[0]() is None
    assert g.dead  # still referenced here, yet its locals are gone
    assert len(data._local__impl.dicts) == 1  # main's only


def test_data_of_a_raw_greenlet_is_freed_when_it_is_collected() -> None:
    data = local()
    refs: list[weakref.ref[Thing]] = []

    def run() -> None:
        thing = Thing()
        refs.append(weakref.ref(thing))
        data.thing = thing

    g = RawGreenlet(run)
    g.switch()
    assert refs[0]() is not None  # a raw greenlet has no finish hook...
    del g
    gc.collect()
    assert refs[0]() is None  # ...but its data goes with it
    assert len(data._local__impl.dicts) == 1


def test_deleting_the_local_frees_every_task_dict() -> None:
    data = local()
    thing = Thing()
    refs = [weakref.ref(thing)]
    data.thing = thing
    del thing
    box = [data]

    def task() -> None:
        mine = box.pop()
        other = Thing()
        refs.append(weakref.ref(other))
        mine.other = other
        del mine, other
        sleep(0.01)  # still alive when the local goes away

    g = spawn(task)
    sleep(0)
    assert len(refs) == 2 and not g.dead
    del data
    gc.collect()
    assert [r() for r in refs] == [None, None]
    g.join()


def test_main_task_of_another_thread_has_its_own_dict() -> None:
    data = local()
    data.x = "main thread"
    seen: list[Any] = []

    def thread() -> None:
        try:
            seen.append(getattr(data, "x", None))
            data.x = "other thread"
            seen.append(data.x)
        finally:
            thread_hub = _peek_hub()
            if thread_hub is not None:
                thread_hub.destroy()

    t = threading.Thread(target=thread)
    t.start()
    t.join(10)
    assert seen == [None, "other thread"]
    assert data.x == "main thread"


def test_local_supports_weak_references() -> None:
    data = local()
    ref = weakref.ref(data)
    assert ref() is data
    del data
    gc.collect()
    assert ref() is None
