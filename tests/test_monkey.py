"""corun.monkey: installing patches modules, the originals registry, late-patch diagnosis.

Every test that patches does it in a fresh interpreter.  Most use small fake
patches modules placed in front of the real ones (``corun.patches.__path__``),
aimed at fake target modules, so they check the machinery itself; a few use
the real ``patches/time.py`` or the whole real ``patch_all()``.
"""

from __future__ import annotations

import importlib.util
import inspect
import textwrap
from pathlib import Path

import pytest

from corun import monkey
from corun.monkey import _areas

from .conftest import run_python

# The tests run over the declared areas, so a new area is covered by adding it there.
AREAS = [area.name for area in _areas.AREAS]
# Which patches modules each patch_all flag installs.
AREA_MODULES = {area.name: list(area.modules) for area in _areas.AREAS}
ALL_MODULES = [name for names in AREA_MODULES.values() for name in names]

FAKE_TARGET = '''\
"""Stands in for a stdlib module."""
def thing():
    return "original"
class Thing:
    pass
'''

FAKE_PATCHES = '''\
"""A fake patches module: replaces thing and Thing on {target}."""
import fake_log
__target__ = {target!r}
__implements__ = ["thing", "Thing"]
def thing():
    return "patched by {name}"
class Thing:
    pass
def _after_patch(target):
    fake_log.calls.append(({name!r}, target.__name__))
'''


def check(source: str, *, prelude: str = "", timeout: float = 30) -> str:
    """Run ``source`` in a fresh interpreter, require success, return its stdout."""
    proc = run_python(prelude + textwrap.dedent(source), timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def fakes(tmp_path: Path, names: list[str] = ALL_MODULES, *, extra: dict[str, str] | None = None) -> str:
    """Write fake patches modules ``names`` (each aimed at ``fake_target_<name>``); return a prelude.

    The prelude, run first in the child, puts the fakes in front of the real
    patches modules and makes ``fake_log.calls`` record each ``_after_patch``.
    """
    fake_dir = tmp_path / "fakepatches"
    fake_dir.mkdir(exist_ok=True)
    (tmp_path / "fake_log.py").write_text("calls = []\n")
    for name in names:
        (tmp_path / f"fake_target_{name}.py").write_text(FAKE_TARGET)
        (fake_dir / f"{name}.py").write_text(FAKE_PATCHES.format(name=name, target=f"fake_target_{name}"))
    for filename, text in (extra or {}).items():
        (tmp_path / filename).write_text(textwrap.dedent(text))
    return textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import corun.patches
        corun.patches.__path__.insert(0, {str(fake_dir)!r})
        # The fakes aim at fake targets: none of them waits for a stdlib import.
        from corun.monkey import _deferred
        _deferred.STDLIB.clear()
        import fake_log
        """
    )


# -- the real time patch --------------------------------------------------------


def test_patch_time_replaces_sleep_on_the_module_already_imported() -> None:
    check(
        """
        import sys, threading, time
        import time as t0
        original_sleep = time.sleep
        from corun import monkey
        import corun.patches.time
        assert not monkey.is_module_patched("time")
        monkey.patch_time()
        assert sys.modules["time"] is t0
        assert t0.sleep is corun.patches.time.sleep
        assert monkey.is_module_patched("time")
        assert monkey.is_object_patched("time", "sleep")
        assert not monkey.is_object_patched("time", "gmtime")
        assert monkey.get_original("time", "sleep") is original_sleep
        assert monkey.get_original("time", "gmtime") is time.gmtime
        assert monkey.get_original("time", ["sleep", "gmtime"]) == [original_sleep, time.gmtime]
        # The program's clocks follow a virtual clock; they are recorded like sleep.
        clocks = ["monotonic", "time", "perf_counter", "monotonic_ns", "time_ns", "perf_counter_ns"]
        assert set(monkey.saved["time"]) == {"sleep", *clocks}
        builtin = type(len)
        assert all(type(monkey.get_original("time", c)) is builtin for c in clocks)
        assert time.monotonic is corun.patches.time.monotonic
        assert threading._time is corun.patches.time.monotonic
        # Never patched, not even imported yet: imported and read.
        import fractions
        assert monkey.get_original("fractions", "Fraction") is fractions.Fraction
        print("ok")
        """
    )


def test_get_original_of_a_missing_name_raises_attribute_error() -> None:
    check(
        """
        from corun import monkey
        try:
            monkey.get_original("time", "no_such_thing")
        except AttributeError:
            print("ok")
        """
    )


def test_copies_other_modules_took_at_import_are_replaced_and_recorded() -> None:
    out = check(
        """
        import _queue, _threading_local, pty, selectors, socketserver
        originals = {"selector": socketserver._ServerSelector, "queue": _queue.SimpleQueue}
        from corun import monkey
        monkey.patch_all()
        import corun.patches.queue, corun.patches.select, corun.patches.selectors
        assert socketserver._ServerSelector is corun.patches.selectors.PollSelector
        assert monkey.get_original("socketserver", "_ServerSelector") is originals["selector"]
        assert _queue.SimpleQueue is corun.patches.queue.SimpleQueue
        assert monkey.get_original("_queue", "SimpleQueue") is originals["queue"]
        assert pty.select is corun.patches.select.select
        assert monkey.is_object_patched("pty", "select")
        assert monkey.is_object_patched("_threading_local", "local")
        patched = monkey.is_object_patched("socketserver", "_ServerSelector")
        print(monkey.is_module_patched("socketserver"), patched)
        """
    )
    assert out.split() == ["True", "True"]


def test_patched_sleep_lets_tasks_sleep_together() -> None:
    out = check(
        """
        from corun import monkey
        monkey.patch_time()
        import time
        import corun
        start = time.monotonic()
        corun.joinall([corun.spawn(time.sleep, 0.3) for _ in range(10)], raise_error=True)
        print(time.monotonic() - start)
        """
    )
    # 10 x 0.3 s one after the other would take 3 s.
    assert float(out) < 1.5


def test_patched_sleep_checks_its_argument_like_time_sleep() -> None:
    check(
        """
        import time
        original = time.sleep
        from corun import monkey
        monkey.patch_time()
        assert time.sleep is not original
        for bad in ("1", None, 1j):
            for sleep in (original, time.sleep):
                try:
                    sleep(bad)
                except TypeError as exc:
                    assert "cannot be interpreted as an integer" in str(exc), exc
                else:
                    raise AssertionError(bad)
        for bad in (-1, -0.5, float("nan")):
            errors = []
            for sleep in (original, time.sleep):
                try:
                    sleep(bad)
                except ValueError as exc:
                    errors.append(str(exc))
            assert len(errors) == 2 and errors[0] == errors[1], errors
        time.sleep(0)
        time.sleep(False)
        time.sleep(0.001)
        print("ok")
        """
    )


# -- the areas, declared once ------------------------------------------------------


def test_patch_all_spells_out_exactly_the_declared_areas() -> None:
    # Spelled out for readers and IDEs; the declaration is what counts.
    parameters = list(inspect.signature(monkey.patch_all).parameters.values())
    areas = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "strict"]
    assert [p.name for p in areas] == AREAS
    assert all(p.default is True for p in areas)
    assert [(p.name, p.default) for p in parameters[len(areas) :]] == [
        ("strict", False),
        ("more", inspect.Parameter.empty),
    ]


def test_a_patch_function_per_declared_area_known_to_type_checkers() -> None:
    made = {name for name in vars(monkey) if name.startswith("patch_")} - {"patch_all", "patch_module"}
    announced = {name for name in monkey.__annotations__ if name.startswith("patch_")}
    expected = {f"patch_{name}" for name in AREAS}
    assert made == announced == expected
    assert expected <= set(monkey.__all__)
    for area in _areas.AREAS:
        patch = getattr(monkey, f"patch_{area.name}")
        assert patch.__name__ == f"patch_{area.name}"
        assert area.description in patch.__doc__
        [strict] = inspect.signature(patch).parameters.values()
        assert (strict.name, strict.kind, strict.default) == ("strict", strict.KEYWORD_ONLY, False)


def test_each_declared_area_is_well_formed() -> None:
    for area in _areas.AREAS:
        assert area.name.isidentifier() and area.name not in ("all", "module", "strict", "more"), area
        assert area.description and "\n" not in area.description and not area.description.endswith(".")
        assert area.modules, area
        for name in area.modules:
            assert importlib.util.find_spec(f"corun.patches.{name}") is not None, (area.name, name)
    assert len(set(AREAS)) == len(AREAS)
    assert len(set(ALL_MODULES)) == len(ALL_MODULES)


def test_install_order_is_declaration_order_unless_after_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _areas.install_order(AREAS) == ALL_MODULES
    assert _areas.install_order(["ssl", "socket"]) == ["socket", "ssl"]
    Area = _areas.Area
    monkeypatch.setattr(
        _areas,
        "AREAS",
        (Area("a", ("a1", "a2"), "a", after=("c",)), Area("b", ("b",), "b"), Area("c", ("c",), "c")),
    )
    assert _areas.install_order(["a", "b", "c"]) == ["c", "a1", "a2", "b"]
    assert _areas.install_order(["a", "b"]) == ["a1", "a2", "b"]
    with pytest.raises(ValueError, match="no such patch area: d"):
        _areas.install_order(["a", "d"])
    monkeypatch.setattr(
        _areas, "AREAS", (Area("a", ("a",), "a", after=("b",)), Area("b", ("b",), "b", after=("a",)))
    )
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        _areas.install_order(["a"])
    monkeypatch.setattr(_areas, "AREAS", (Area("a", ("a",), "a", after=("nope",)),))
    with pytest.raises(ValueError, match="unknown area 'nope'"):
        _areas.install_order(["a"])


# A new area, declared where the others are and nowhere else.
NEW_AREA = """
from corun.monkey import _areas
_areas.AREAS = (*_areas.AREAS, _areas.Area("widget", ("widget",), "widgets that wait", after=("time",)))
import importlib
from corun import monkey
monkey = importlib.reload(monkey)  # its patch_<area> functions are made at import
"""


def test_a_new_area_needs_only_its_declaration(tmp_path: Path) -> None:
    prelude = fakes(tmp_path, [*ALL_MODULES, "widget"]) + NEW_AREA
    out = check(
        """
        assert "widgets that wait" in monkey.patch_widget.__doc__
        assert "patch_widget" in monkey.__all__
        try:
            monkey.patch_all(gadget=True)
        except TypeError as exc:
            assert "widget" in str(exc).split("valid")[1], exc
        else:
            raise AssertionError("gadget accepted")
        monkey.patch_all(widget=False, time=False)
        print([name for name, target in fake_log.calls])
        monkey.patch_all()
        print([name for name, target in fake_log.calls])
        del fake_log.calls[:]
        monkey.patch_widget()
        print(fake_log.calls)
        """,
        prelude=prelude,
    )
    first, second, third = (eval(line) for line in out.splitlines())
    assert first == [name for name in ALL_MODULES if name != "time"]
    # widget after time, which patch_all() installs now too.
    assert second[len(first) :] == ["time", "widget"]
    assert third == []  # installed already


# -- patch_all: flags, areas, idempotence ---------------------------------------


def test_patch_all_rejects_an_unknown_keyword_naming_the_valid_ones() -> None:
    out = check(
        """
        import time
        original = time.sleep
        from corun import monkey
        try:
            monkey.patch_all(aggressive=True)
        except TypeError as exc:
            print(exc)
        assert time.sleep is original and monkey.saved == {}
        """
    )
    assert "aggressive" in out
    for name in [*AREAS, "strict"]:
        assert name in out.split("valid")[1], out


@pytest.mark.parametrize("area", AREAS)
def test_each_flag_installs_its_patches_modules(tmp_path: Path, area: str) -> None:
    prelude = fakes(tmp_path)
    out = check(
        f"""
        from corun import monkey
        flags = {{name: name == {area!r} for name in {AREAS!r}}}
        monkey.patch_all(**flags)
        print([name for name, target in fake_log.calls])
        for name, target in fake_log.calls:
            module = sys.modules[target]
            assert module.thing() == "patched by " + name
            assert monkey.get_original(target, "thing")() == "original"
        """,
        prelude=prelude,
    )
    assert eval(out) == AREA_MODULES[area]


def test_patch_all_installs_every_area_in_a_safe_order(tmp_path: Path) -> None:
    prelude = fakes(tmp_path)
    out = check(
        """
        from corun import monkey
        monkey.patch_all()
        print([name for name, target in fake_log.calls])
        """,
        prelude=prelude,
    )
    order = eval(out)
    assert sorted(order) == sorted(ALL_MODULES)
    # ssl builds on the cooperative socket; selectors on select; threading on thread.
    assert order.index("socket") < order.index("ssl")
    assert order.index("select") < order.index("selectors")
    assert order.index("thread") < order.index("threading")


@pytest.mark.parametrize("area", AREAS)
def test_each_patch_function_installs_its_patches_modules(tmp_path: Path, area: str) -> None:
    prelude = fakes(tmp_path)
    out = check(
        f"""
        from corun import monkey
        monkey.patch_{area}()
        print([name for name, target in fake_log.calls])
        """,
        prelude=prelude,
    )
    assert eval(out) == AREA_MODULES[area]


def test_an_area_without_a_patches_module_is_skipped(tmp_path: Path) -> None:
    # Only "time" exists: the other patches modules are hidden the way
    # Python blocks an import, with None in sys.modules.
    hidden = [name for name in ALL_MODULES if name != "time"]
    prelude = (
        fakes(tmp_path, ["time"]) + f"for name in {hidden!r}: sys.modules['corun.patches.' + name] = None\n"
    )
    out = check(
        """
        from corun import monkey
        monkey.patch_all()
        print([name for name, target in fake_log.calls])
        assert monkey.patch_module("thread") is False
        assert monkey.patch_module("no_such_area") is False
        assert monkey.patch_module("time") is True
        """,
        prelude=prelude,
    )
    assert eval(out) == ["time"]


def test_patching_twice_changes_nothing(tmp_path: Path) -> None:
    prelude = fakes(tmp_path)
    check(
        """
        from corun import monkey
        monkey.patch_all()
        first = {module: dict(names) for module, names in monkey.saved.items()}
        values = {module: sys.modules[module].thing for module in first}
        calls = list(fake_log.calls)
        monkey.patch_all()
        monkey.patch_socket()
        assert monkey.patch_module("time") is True
        assert fake_log.calls == calls  # no second _after_patch
        assert {module: dict(names) for module, names in monkey.saved.items()} == first
        for module, names in first.items():
            assert names["thing"]() == "original"
            assert sys.modules[module].thing is values[module]
        print("ok")
        """,
        prelude=prelude,
    )


def test_patch_module_installs_one_and_calls_after_patch_with_the_target(tmp_path: Path) -> None:
    prelude = fakes(tmp_path, ["widget"])
    check(
        """
        import fake_target_widget as target
        original_class = target.Thing
        from corun import monkey
        assert monkey.patch_module("widget") is True
        assert fake_log.calls == [("widget", "fake_target_widget")]
        assert target.thing() == "patched by widget"
        assert target.Thing is not original_class
        assert monkey.get_original("fake_target_widget", "Thing") is original_class
        assert monkey.is_module_patched("fake_target_widget")
        print("ok")
        """,
        prelude=prelude,
    )


def test_a_patches_module_breaking_the_contract_patches_nothing(tmp_path: Path) -> None:
    prelude = fakes(
        tmp_path,
        [],
        extra={
            "fake_target_broken.py": FAKE_TARGET,
            "fakepatches/broken.py": """
                __target__ = "fake_target_broken"
                __implements__ = ["thing", "missing"]
                def thing():
                    return "patched"
            """,
        },
    )
    out = check(
        """
        from corun import monkey
        import fake_target_broken
        try:
            monkey.patch_module("broken")
        except AttributeError as exc:
            print(exc)
        assert fake_target_broken.thing() == "original"
        assert not monkey.is_module_patched("fake_target_broken")
        """,
        prelude=prelude,
    )
    assert "'missing'" in out and "__implements__" in out


def test_a_name_the_target_lacks_is_not_added(tmp_path: Path) -> None:
    prelude = fakes(
        tmp_path,
        [],
        extra={
            "fake_target_partial.py": FAKE_TARGET,
            "fakepatches/partial.py": """
                __target__ = "fake_target_partial"
                __implements__ = ["thing", "epoll"]
                def thing():
                    return "patched"
                def epoll():
                    return "not on this platform"
            """,
        },
    )
    check(
        """
        from corun import monkey
        import fake_target_partial as target
        assert monkey.patch_module("partial")
        assert target.thing() == "patched"
        assert not hasattr(target, "epoll")
        assert not monkey.is_object_patched("fake_target_partial", "epoll")
        print("ok")
        """,
        prelude=prelude,
    )


# -- every change patching makes is recorded -------------------------------------------

# Everything patching could change: the namespace of every module imported
# before it, the attributes of every class defined there, the signal handlers.
SNAPSHOT = """
import signal, sys, types

def snapshot(getsignal):
    namespaces, contents, defaults = {}, {}, {}
    for module_name, module in list(sys.modules.items()):
        # The program itself (multiprocessing names it __mp_main__ too) is not patched.
        if module_name in ("__main__", "__mp_main__") or not isinstance(module, types.ModuleType):
            continue
        namespace = dict(vars(module))
        namespaces[module_name, ""] = (module, namespace)
        for attr, value in namespace.items():
            if isinstance(value, type) and value.__module__ == module_name:
                namespaces[module_name, attr + "."] = (value, dict(vars(value)))
                # Default arguments bound at import (Connection._recv's read=os.read).
                for name, method in vars(value).items():
                    if isinstance(method, types.FunctionType):
                        defaults[module_name, f"{attr}.{name}.__defaults__"] = (method, method.__defaults__)
            elif type(value) is list:
                contents[module_name, attr] = list(value)
    handlers = {}
    for signum in signal.valid_signals():
        try:
            handlers[signum] = getsignal(signum)
        except (OSError, ValueError):
            pass
    return namespaces, contents, defaults, handlers

def changes(before, getsignal):
    # What changed since before, each with the value it had then.
    namespaces, contents, defaults, handlers = before
    found = {}
    for (module_name, prefix), (owner, namespace) in namespaces.items():
        now = vars(owner)
        for attr in set(namespace) | set(now):
            old, new = namespace.get(attr), now.get(attr)
            # A submodule imported meanwhile is bound in its package.
            if old is not new and not (old is None and isinstance(new, types.ModuleType)):
                found[module_name, prefix + attr] = old
    for (module_name, attr), items in contents.items():
        now = vars(sys.modules[module_name]).get(attr)
        if now is namespaces[module_name, ""][1][attr] and now != items:  # a list changed in place
            found[module_name, attr] = now
    for key, (function, old) in defaults.items():
        if function.__defaults__ is not old:
            found[key] = old
    for signum, handler in handlers.items():
        if getsignal(signum) is not handler:
            found["signal", f"handler({signal.Signals(signum).name})"] = handler
    return found
"""


def test_every_change_patch_all_makes_is_recorded_with_its_original() -> None:
    out = check(
        """
        import _queue, _threading_local, pty, queue, selectors, socketserver, ssl, subprocess, threading
        import multiprocessing.connection, sqlite3
        # Importing corun is not patching (its names are imported on first use: all of them here).
        import corun
        for name in corun.__all__:
            getattr(corun, name)
        before = snapshot(signal.getsignal)
        from corun import monkey
        monkey.patch_all()
        made = changes(before, monkey.get_original("signal", "getsignal"))
        recorded = {(module, key): original for module, originals in monkey.saved.items()
                    for key, original in originals.items()}
        print(sorted(set(made) - set(recorded)))
        print(sorted(set(recorded) - set(made)))
        for (module, key), original in made.items():
            assert monkey.get_original(module, key) is original, (module, key)
        print(len(recorded))
        """,
        prelude=SNAPSHOT,
    )
    unrecorded, unmade, count = out.splitlines()
    assert unrecorded == "[]"
    assert unmade == "[]"
    assert int(count) > 40


def test_contexts_made_before_patching_make_cooperative_sockets_and_that_is_recorded() -> None:
    check(
        """
        import ssl
        original_context_class, original_socket_class = ssl.SSLContext, ssl.SSLSocket
        before = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        from corun import monkey
        # Read through the original SSLContext, also before patching.
        assert monkey.get_original("ssl", "SSLContext.sslsocket_class") is original_socket_class
        monkey.patch_all()
        import corun.patches.ssl
        assert before.sslsocket_class is corun.patches.ssl.SSLSocket
        assert original_context_class.sslsocket_class is corun.patches.ssl.SSLSocket
        assert monkey.is_object_patched("ssl", "SSLContext.sslsocket_class")
        assert monkey.get_original("ssl", "SSLContext.sslsocket_class") is original_socket_class
        print("ok")
        """
    )


def test_the_queue_finder_is_a_new_meta_path_and_the_original_is_recorded() -> None:
    check(
        """
        import sys
        original = sys.meta_path
        entries = list(original)
        from corun import monkey
        monkey.patch_all()
        import corun.monkey._deferred, corun.patches.queue
        finder = corun.patches.queue._CooperativeQueueFinder
        # The hook installing twins on import (psycopg's) goes in front of it, installed after it.
        assert sys.meta_path == [corun.monkey._deferred.ImportHook, finder, *entries]
        assert monkey.is_object_patched("sys", "meta_path")
        assert monkey.get_original("sys", "meta_path") is original
        assert original == entries  # left as it was
        from test.support.import_helper import import_fresh_module
        fresh = import_fresh_module("queue", fresh=["_queue"])
        assert issubclass(fresh.SimpleQueue, corun.patches.queue.SimpleQueue)
        monkey.patch_queue()
        assert sys.meta_path.count(finder) == 1
        print("ok")
        """
    )


def test_the_sigint_wrapper_is_recorded_with_the_default_handler() -> None:
    check(
        """
        import signal
        from corun import monkey
        monkey.patch_all()
        assert monkey.is_object_patched("signal", "handler(SIGINT)")
        assert monkey.get_original("signal", "handler(SIGINT)") is signal.default_int_handler
        # The program still sees the default handler; the OS-level one is corun's.
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        installed = monkey.get_original("signal", "getsignal")(signal.SIGINT)
        assert installed is not signal.default_int_handler and installed.handler is signal.default_int_handler
        print("ok")
        """
    )


@pytest.mark.parametrize("where", ["own handler", "other thread"])
def test_sigint_left_alone_is_not_recorded(where: str) -> None:
    out = check(
        f"""
        import signal, threading
        mine = lambda signum, frame: None
        if {where!r} == "own handler":
            signal.signal(signal.SIGINT, mine)
        from corun import monkey
        if {where!r} == "other thread":
            thread = threading.Thread(target=monkey.patch_signal)
            thread.start()
            thread.join()
            expected = signal.default_int_handler
        else:
            monkey.patch_signal()
            expected = mine
        assert monkey.is_module_patched("signal")
        assert monkey.get_original("signal", "getsignal")(signal.SIGINT) is expected
        print(monkey.is_object_patched("signal", "handler(SIGINT)"))
        """
    )
    assert out == "False\n"


# -- what patching must not do ----------------------------------------------------


def test_patch_all_creates_no_hub_and_starts_no_thread() -> None:
    check(
        """
        import os, threading
        threads = threading.active_count()
        tasks = set(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
        from corun import monkey
        monkey.patch_all()
        from corun.hub import _peek_hub
        assert _peek_hub() is None
        assert threading.active_count() == threads
        if tasks is not None:
            assert set(os.listdir("/proc/self/task")) == tasks
        print("ok")
        """
    )


def test_patch_all_in_a_clean_program_warns_about_nothing() -> None:
    # Stdlib modules capture originals too; fixing those is the patches
    # modules' job, so they are not reported.
    proc = run_python(
        """
        import warnings
        warnings.simplefilter("error")
        import asyncio, http.client, logging, queue, selectors, socketserver, subprocess, threading, time
        from corun import monkey
        monkey.patch_all()
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n" and proc.stderr == ""


# -- late patching ------------------------------------------------------------------

LATE_USER = """
    from fake_target_time import thing
    import fake_target_time
    renamed = fake_target_time.thing
    class Sub(fake_target_time.Thing):
        pass
    from fake_target_socket import Thing
"""
# Imports the subclass from where it is defined: reported there, not here.
LATE_REEXPORT = """
    from lateuser import Sub
"""

RECORD_WARNINGS = """
import warnings
warnings.simplefilter("always")
import lateuser, reexport
from corun import monkey
with warnings.catch_warnings(record=True) as caught:
    monkey.patch_all()
for w in caught:
    print(w.category.__name__, w.filename)
    print(w.message)
"""


def test_late_patching_warns_once_naming_modules_and_names(tmp_path: Path) -> None:
    prelude = fakes(tmp_path, extra={"lateuser.py": LATE_USER, "reexport.py": LATE_REEXPORT})
    out = check(RECORD_WARNINGS, prelude=prelude)
    header, message = out.split("\n", 1)
    # One warning, pointed at the caller of patch_all.
    assert header == "MonkeyPatchWarning <string>"
    assert message.count("corun.monkey:") == 1
    assert "'lateuser'" in message
    assert "thing is fake_target_time.thing" in message
    assert "renamed is fake_target_time.thing" in message
    assert "class Sub subclasses fake_target_time.Thing" in message
    assert "Thing is fake_target_socket.Thing" in message
    assert "reexport" not in message
    assert "patch_all()" in message and "python -m corun" in message
    # Patching went ahead anyway.
    assert "'fake_log'" not in message


def test_late_patching_still_patches(tmp_path: Path) -> None:
    prelude = fakes(tmp_path, extra={"lateuser.py": LATE_USER, "reexport.py": LATE_REEXPORT})
    check(
        """
        import lateuser, fake_target_time
        from corun import monkey
        import pytest
        with pytest.warns(monkey.MonkeyPatchWarning):
            monkey.patch_all()
        assert fake_target_time.thing() == "patched by time"
        assert lateuser.thing() == "original"  # the captured one, which is the point
        print("ok")
        """,
        prelude=prelude,
    )


def test_strict_raises_and_patches_nothing(tmp_path: Path) -> None:
    prelude = fakes(tmp_path, extra={"lateuser.py": LATE_USER, "reexport.py": LATE_REEXPORT})
    out = check(
        """
        import warnings
        warnings.simplefilter("error")
        import lateuser, fake_target_time
        from corun import monkey
        assert issubclass(monkey.LatePatchError, RuntimeError)
        assert issubclass(monkey.MonkeyPatchWarning, RuntimeWarning)
        try:
            monkey.patch_all(strict=True)
        except monkey.LatePatchError as exc:
            print(exc)
        assert fake_log.calls == []
        assert monkey.saved == {}
        assert fake_target_time.thing() == "original"
        """,
        prelude=prelude,
    )
    assert "'lateuser'" in out and "thing is fake_target_time.thing" in out


def test_the_check_for_captures_leaves_lazy_proxies_untouched(tmp_path: Path) -> None:
    # Like celery's proxies, whose __class__ imports what they stand for.
    (tmp_path / "lazything.py").write_text(
        textwrap.dedent(
            """
            class Lazy:
                @property
                def __class__(self):
                    raise RuntimeError("the proxy was touched")
            thing = Lazy()
            """
        )
    )
    out = check(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import lazything
        from corun import monkey
        monkey.patch_all()
        import ssl
        print(type(lazything.thing).__name__)
        """
    )
    assert out == "Lazy\n"


def test_the_stdlib_twins_that_wait_for_an_import_are_declared_with_their_modules() -> None:
    out = check(
        """
        import importlib
        from corun.monkey import _areas, _deferred
        for twin, module in _deferred.STDLIB.items():
            assert any(twin in area.modules for area in _areas.AREAS), twin
            assert importlib.import_module(f"corun.patches.{twin}").__target__ == module, twin
        print(sorted(_deferred.STDLIB))
        """
    )
    assert out == "['dns', 'socket', 'sqlite3', 'ssl', 'subprocess']\n"


def test_patching_imports_no_socket_ssl_sqlite3_or_subprocess_and_their_import_installs_their_twins() -> None:
    out = check(
        """
        import sys
        from corun import monkey
        monkey.patch_all()
        monkey.patch_all()  # again: still waiting
        print(sorted({"socket", "_ssl", "ssl", "sqlite3", "subprocess"} & set(sys.modules)))
        import ssl, sqlite3, subprocess
        from corun.patches import dns as codns, socket as cosocket
        from corun.patches import ssl as cossl, sqlite3 as cosqlite3, subprocess as cosubprocess
        import socket
        assert socket.socket is cosocket.socket and socket.getaddrinfo is codns.getaddrinfo
        assert issubclass(ssl.SSLSocket, cosocket.socket)
        assert ssl.SSLContext is cossl.SSLContext and ssl.SSLSocket is cossl.SSLSocket
        assert ssl.create_default_context().sslsocket_class is cossl.SSLSocket
        assert sqlite3.connect is sqlite3.dbapi2.connect is cosqlite3.connect
        assert subprocess.Popen is cosubprocess.Popen
        original = monkey.get_original("subprocess", "Popen")
        assert original is not cosubprocess.Popen and original.__module__ == "subprocess"
        # Each installed once, from the import: patching again changes nothing.
        monkey.patch_all()
        assert subprocess.Popen is cosubprocess.Popen
        assert monkey.get_original("subprocess", "Popen") is original
        print("ok")
        """
    )
    assert out == "[]\nok\n"


def test_asking_about_a_module_whose_twin_waits_imports_it_and_installs_the_twin() -> None:
    out = check(
        """
        import sys
        from corun import monkey
        monkey.patch_all(ssl=False)
        # Not patched: asking imports nothing.
        assert not monkey.is_module_patched("ssl") and "ssl" not in sys.modules
        assert "subprocess" not in sys.modules
        assert monkey.is_module_patched("subprocess")
        from corun.patches import subprocess as cosubprocess
        assert sys.modules["subprocess"].Popen is cosubprocess.Popen
        assert "sqlite3" not in sys.modules
        assert monkey.is_object_patched("sqlite3", "connect")
        import sqlite3
        from corun.patches import sqlite3 as cosqlite3
        assert sqlite3.connect is cosqlite3.connect
        assert monkey.get_original("sqlite3", "connect") is monkey.saved["sqlite3"]["connect"]
        assert monkey.get_original("sqlite3", "connect") is not cosqlite3.connect
        print("ok")
        """
    )
    assert out == "ok\n"


def test_a_waiting_twin_whose_module_a_later_twin_imports_is_installed_by_the_same_patching(
    tmp_path: Path,
) -> None:
    # The ssl stand-in waits for its module; the subprocess stand-in, installed after it, imports it.
    subprocess_twin = FAKE_PATCHES.format(name="subprocess", target="fake_target_subprocess")
    prelude = fakes(
        tmp_path,
        ["ssl"],
        extra={
            "fakepatches/subprocess.py": subprocess_twin + "import fake_target_ssl\n",
            "fake_target_subprocess.py": FAKE_TARGET,
        },
    )
    out = check(
        f"""
        from corun.monkey import _deferred
        _deferred.STDLIB["ssl"] = "fake_target_ssl"
        from corun import monkey
        assert "fake_target_ssl" not in sys.modules
        monkey.patch_all(**{{area: area in ("ssl", "subprocess") for area in {AREAS!r}}})
        import fake_target_ssl
        print(fake_log.calls)
        print(fake_target_ssl.thing())
        """,
        prelude=prelude,
    )
    assert out == ("[('subprocess', 'fake_target_subprocess'), ('ssl', 'fake_target_ssl')]\npatched by ssl\n")


@pytest.mark.parametrize("imported_first", [False, True])
def test_a_twin_of_a_package_is_installed_once_the_program_imports_it(
    tmp_path: Path, imported_first: bool
) -> None:
    (tmp_path / "fakedriver").mkdir()
    twin = FAKE_PATCHES.format(name="driver", target="fakedriver.core")
    prelude = fakes(
        tmp_path,
        [],
        extra={
            "fakedriver/__init__.py": "from . import core\n",
            "fakedriver/core.py": FAKE_TARGET,
            "fakepatches/driver.py": twin + '__installed_on_import__ = "fakedriver"\n',
        },
    )
    out = check(
        f"""
        if {imported_first}:
            import fakedriver
        from corun import monkey
        assert monkey.patch_module("driver")
        if not {imported_first}:
            # Patching imports no package of the program's.
            assert "fakedriver" not in sys.modules and fake_log.calls == []
            assert not monkey.is_module_patched("fakedriver.core")
            import fakedriver
        assert fake_log.calls == [("driver", "fakedriver.core")]
        assert fakedriver.core.thing() == "patched by driver"
        assert monkey.get_original("fakedriver.core", "thing")() == "original"
        assert monkey.patch_module("driver")  # installed already: nothing more
        assert len(fake_log.calls) == 1
        print("ok")
        """,
        prelude=prelude,
    )
    assert out == "ok\n"


def test_a_twin_names_the_packages_whose_captures_patching_rebinds(tmp_path: Path) -> None:
    # napkit.sub took time.sleep by name, as napper did; a twin vouches for napkit only.
    (tmp_path / "napkit").mkdir()
    twin = '__target__ = "sys"\n__implements__ = []\n__repairs_captures_in__ = ("napkit",)\n'
    prelude = fakes(
        tmp_path,
        [],
        extra={
            "napkit/__init__.py": "",
            "napkit/sub.py": "from time import sleep\n",
            "napper.py": "from time import sleep\n",
            "fakepatches/napkit_twin.py": twin,
        },
    )
    out = check(
        """
        import time, warnings
        original = time.sleep
        import napkit.sub, napper
        from corun import monkey
        assert monkey.patch_module("napkit_twin")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monkey.patch_time()
        [warning] = caught
        assert "'napper'" in str(warning.message), warning.message
        assert "napkit" not in str(warning.message), warning.message
        assert napkit.sub.sleep is time.sleep is not original
        assert napper.sleep is original
        assert monkey.get_original("napkit.sub", "sleep") is original
        print("ok")
        """,
        prelude=prelude,
    )
    assert out == "ok\n"


def test_late_import_of_the_real_time_sleep_is_reported(tmp_path: Path) -> None:
    (tmp_path / "napper.py").write_text("from time import sleep\n")
    out = check(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import napper
        from corun import monkey
        try:
            monkey.patch_time(strict=True)
        except monkey.LatePatchError as exc:
            print(exc)
        """
    )
    assert "module 'napper': sleep is time.sleep" in out


def test_a_subclass_of_ssl_context_is_reported(tmp_path: Path) -> None:
    prelude = fakes(
        tmp_path,
        [],
        extra={
            "fakepatches/ssl.py": """
                import ssl as _ssl
                __target__ = "ssl"
                __implements__ = ["SSLContext"]
                class SSLContext(_ssl.SSLContext):
                    pass
            """,
            "tlsuser.py": """
                import ssl
                class MyContext(ssl.SSLContext):
                    pass
            """,
        },
    )
    out = check(
        """
        import tlsuser
        from corun import monkey
        try:
            monkey.patch_ssl(strict=True)
        except monkey.LatePatchError as exc:
            print(exc)
        """,
        prelude=prelude,
    )
    assert "module 'tlsuser': class MyContext subclasses ssl.SSLContext" in out


FAKE_SOCKET_PATCH = """
    import socket as _socket
    __target__ = "socket"
    __implements__ = ["socket"]
    class socket(_socket.socket):
        pass
"""


FAKE_SSL_PATCH = """
    import ssl as _ssl
    __target__ = "ssl"
    __implements__ = ["SSLContext"]
    class SSLContext(_ssl.SSLContext):
        pass
"""


@pytest.mark.parametrize(
    ("ssl_first", "patch_ssl_too", "noted"),
    [(True, False, True), (False, False, False), (True, True, False)],
)
def test_ssl_imported_before_socket_is_patched_is_noted_unless_ssl_is_patched_too(
    tmp_path: Path, ssl_first: bool, patch_ssl_too: bool, noted: bool
) -> None:
    # Stand-ins for the socket and ssl twins, placed in front of the real ones.
    prelude = fakes(
        tmp_path,
        [],
        extra={"fakepatches/socket.py": FAKE_SOCKET_PATCH, "fakepatches/ssl.py": FAKE_SSL_PATCH},
    )
    out = check(
        f"""
        import warnings
        if {ssl_first}:
            import ssl
        from corun import monkey
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monkey.patch_all(**{{area: area in ("socket", "ssl" if {patch_ssl_too} else "socket")
                                for area in {AREAS!r}}})
        for w in caught:
            print(w.message)
        assert monkey.is_object_patched("socket", "socket")
        assert monkey.is_module_patched("ssl") is {patch_ssl_too}
        """,
        prelude=prelude,
    )
    if noted:
        assert "module 'ssl' was imported before socket was patched" in out
    else:
        assert out == ""


def test_names_in_removes_are_deleted_while_patched_and_remembered(tmp_path: Path) -> None:
    removing = FAKE_PATCHES.format(name="time", target="fake_target_time") + '__removes__ = ["Thing"]\n'
    prelude = fakes(tmp_path, ["time"], extra={"fakepatches/time.py": removing})
    out = check(
        """
        import fake_target_time
        original = fake_target_time.Thing
        from corun import monkey
        monkey.patch_time()
        assert not hasattr(fake_target_time, "Thing")
        assert fake_target_time.thing() == "patched by time"
        assert monkey.get_original("fake_target_time", "Thing") is original
        assert monkey.is_object_patched("fake_target_time", "Thing")
        monkey.patch_time()  # idempotent: nothing to remove twice
        print("ok")
        """,
        prelude=prelude,
    )
    assert out.strip() == "ok"
