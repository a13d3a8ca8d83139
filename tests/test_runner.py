"""``python -m corun``: real scripts, each also run with plain python to compare."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corun.monkey import _areas

from .conftest import ROOT, run_process

AREAS = [area.name for area in _areas.AREAS]

# Prints what a script can see of how it was started.
SHOW_START = """\
import json, sys
print(json.dumps({
    "argv": sys.argv,
    "file": __file__,
    "path0": sys.path[0],
    "name": __name__,
    "package": __package__,
    "spec": getattr(__spec__, "name", None),
    "loader": type(__loader__).__name__,
    "globals": sorted(globals()),
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
}))
"""


def run(cmd: list[str], cwd: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("PYTHONWARNINGS", None)
    return run_process(cmd, cwd=cwd, env=env, timeout=30, input=input)


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Plain ``python args...``."""
    return run([sys.executable, *args], cwd)


def corun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m corun args...``."""
    return run([sys.executable, "-m", "corun", *args], cwd)


def script(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def same(args: list[str], cwd: Path, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``args`` both ways; require the same exit status, stdout and stderr."""
    plain = python(*args, cwd=cwd)
    ours = corun(*options, *args, cwd=cwd)
    assert (ours.returncode, ours.stdout, ours.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    return ours


# -- what the script sees -------------------------------------------------------------


def test_script_sees_argv_file_path_and_main_as_under_python(tmp_path: Path) -> None:
    script(tmp_path / "sub" / "show.py", SHOW_START)
    proc = same(["sub/show.py", "a", "--b", "-m", "c"], tmp_path)
    seen = json.loads(proc.stdout)
    assert seen["argv"] == ["sub/show.py", "a", "--b", "-m", "c"]
    assert seen["file"] == str(tmp_path / "sub" / "show.py")
    assert seen["path0"] == str(tmp_path / "sub")
    assert seen["name"] == "__main__" and seen["main_is_me"]


def test_script_by_absolute_path_from_elsewhere(tmp_path: Path) -> None:
    shown = script(tmp_path / "scripts" / "show.py", SHOW_START)
    (tmp_path / "elsewhere").mkdir()
    proc = same([str(shown), "x"], tmp_path / "elsewhere")
    assert json.loads(proc.stdout)["path0"] == str(tmp_path / "scripts")


def test_symlinked_script_gets_the_real_directory_in_path0(tmp_path: Path) -> None:
    script(tmp_path / "real" / "show.py", SHOW_START)
    (tmp_path / "link.py").symlink_to(tmp_path / "real" / "show.py")
    proc = same(["link.py"], tmp_path)
    seen = json.loads(proc.stdout)
    assert seen["file"] == str(tmp_path / "link.py")
    assert seen["path0"] == str(tmp_path / "real")


def test_options_after_the_script_belong_to_the_script(tmp_path: Path) -> None:
    script(tmp_path / "show.py", SHOW_START)
    proc = same(["show.py", "--no-time", "--help", "-m", "json"], tmp_path)
    assert json.loads(proc.stdout)["argv"] == ["show.py", "--no-time", "--help", "-m", "json"]
    ours = corun("--", "show.py", "--verbose", cwd=tmp_path)
    assert json.loads(ours.stdout)["argv"] == ["show.py", "--verbose"]


def test_script_imports_its_neighbours(tmp_path: Path) -> None:
    script(tmp_path / "app" / "helper.py", "VALUE = 42\n")
    script(tmp_path / "app" / "main.py", "import helper\nprint(helper.VALUE)\n")
    assert same(["app/main.py"], tmp_path).stdout == "42\n"


def test_main_guard_runs_and_classes_of_the_script_pickle(tmp_path: Path) -> None:
    script(
        tmp_path / "pick.py",
        """
        import pickle, sys
        import __main__

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

        if __name__ == "__main__":
            assert __main__.Point is Point
            back = pickle.loads(pickle.dumps(Point(1, 2)))
            print(type(back).__qualname__, back.x, back.y, type(back) is Point)
        """,
    )
    assert same(["pick.py"], tmp_path).stdout == "Point 1 2 True\n"


def test_a_directory_with_main_runs_as_under_python(tmp_path: Path) -> None:
    script(tmp_path / "app" / "__main__.py", SHOW_START)
    proc = same(["app", "z"], tmp_path)
    seen = json.loads(proc.stdout)
    assert seen["path0"] == str(tmp_path / "app") and seen["argv"] == ["app", "z"]


# -- how the script ends ----------------------------------------------------------------

ENDINGS = {
    "falls off the end": "print('done')",
    "sys.exit(3)": "import sys\nsys.exit(3)",
    "sys.exit(message)": "import sys\nsys.exit('bye now')",
    "exception": "def inner():\n    raise ValueError('boom')\ndef outer():\n    inner()\nouter()",
    "chained exception": (
        "try:\n    {}['key']\nexcept KeyError as exc:\n    raise RuntimeError('while looking up') from exc"
    ),
    "syntax error": "def broken(:\n    pass",
    "KeyboardInterrupt": "import atexit\natexit.register(print, 'atexit ran')\nraise KeyboardInterrupt",
    "custom excepthook": (
        "import sys\nsys.excepthook = lambda t, v, tb: print('hooked', t.__name__, file=sys.stderr)\n"
        "raise OSError('x')"
    ),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_exit_status_and_traceback_are_pythons(tmp_path: Path, ending: str) -> None:
    script(tmp_path / "end.py", ENDINGS[ending] + "\n")
    proc = same(["end.py"], tmp_path)
    assert "corun" not in proc.stderr and "runpy" not in proc.stderr


def test_missing_script_exits_2_with_one_line(tmp_path: Path) -> None:
    plain = python("nothere.py", cwd=tmp_path)
    ours = corun("nothere.py", cwd=tmp_path)
    assert plain.returncode == ours.returncode == 2
    assert ours.stderr == plain.stderr.replace(sys.executable, "corun", 1)
    assert (
        ours.stderr
        == f"corun: can't open file '{tmp_path / 'nothere.py'}': [Errno 2] No such file or directory\n"
    )


def test_missing_module_fails_as_python_m_does(tmp_path: Path) -> None:
    plain = python("-m", "no_such_module_here", cwd=tmp_path)
    ours = corun("-m", "no_such_module_here", cwd=tmp_path)
    assert ours.returncode == plain.returncode != 0
    assert ours.stderr == plain.stderr.replace(sys.executable, "corun", 1)
    assert ours.stderr == "corun: No module named no_such_module_here\n"


# -- -m module -------------------------------------------------------------------------


def test_module_sees_argv_file_and_path_as_under_python_m(tmp_path: Path) -> None:
    script(tmp_path / "pkg" / "__init__.py", "")
    script(tmp_path / "pkg" / "show.py", SHOW_START)
    proc = same(["-m", "pkg.show", "a", "b"], tmp_path)
    seen = json.loads(proc.stdout)
    assert seen["argv"] == [str(tmp_path / "pkg" / "show.py"), "a", "b"]
    assert seen["path0"] == str(tmp_path)
    assert seen["spec"] == "pkg.show" and seen["package"] == "pkg" and seen["main_is_me"]
    assert json.loads(corun("-mpkg.show", cwd=tmp_path).stdout)["spec"] == "pkg.show"


def test_package_with_main_runs_as_under_python_m(tmp_path: Path) -> None:
    script(tmp_path / "pkg" / "__init__.py", "")
    script(tmp_path / "pkg" / "__main__.py", "from . import helper\n" + SHOW_START)
    script(tmp_path / "pkg" / "helper.py", "")
    seen = json.loads(same(["-m", "pkg", "q"], tmp_path).stdout)
    assert seen["spec"] == "pkg.__main__" and seen["argv"][1:] == ["q"]


def test_module_traceback_starts_in_the_module(tmp_path: Path) -> None:
    script(tmp_path / "failing.py", "import sys\ndef f():\n    raise LookupError('no')\nf()\n")
    plain = python("-m", "failing", cwd=tmp_path)
    ours = corun("-m", "failing", cwd=tmp_path)
    assert ours.returncode == plain.returncode == 1
    header = "Traceback (most recent call last):\n"
    # python -m shows runpy's own frames first; the runner shows only the module's.
    assert ours.stderr.startswith(header) and "runpy" not in ours.stderr and "corun" not in ours.stderr
    assert plain.stderr.endswith(ours.stderr[len(header) :])
    assert 'failing.py", line 4, in <module>' in ours.stderr


# -- -c command ------------------------------------------------------------------------

# What a command can see of how it was started (it has no __file__).
SHOW_COMMAND = (
    "import json, sys; print(json.dumps({'argv': sys.argv, 'path0': sys.path[0], 'name': __name__, "
    "'package': __package__, 'spec': __spec__, 'loader': __loader__.__name__, "
    "'globals': sorted(globals()), 'main_is_me': sys.modules['__main__'].__dict__ is globals()}))"
)


def test_command_sees_argv_path_and_main_as_under_python_c(tmp_path: Path) -> None:
    seen = json.loads(same(["-c", SHOW_COMMAND, "a", "-m", "--b"], tmp_path).stdout)
    assert seen["argv"] == ["-c", "a", "-m", "--b"]
    assert seen["path0"] == "" and seen["name"] == "__main__" and seen["main_is_me"]
    assert json.loads(corun(f"-c{SHOW_COMMAND}", cwd=tmp_path).stdout)["argv"] == ["-c"]


@pytest.mark.parametrize("ending", ["raise ValueError('boom')", "import sys; sys.exit(3)", "print('fine')"])
def test_command_exit_status_and_traceback_are_pythons(tmp_path: Path, ending: str) -> None:
    proc = same(["-c", f"import os\n{ending}"], tmp_path)
    assert "corun" not in proc.stderr


# -- patching and options ---------------------------------------------------------------

CHECK_PATCHED = """
import time
import corun
from corun import monkey
print(monkey.is_object_patched("time", "sleep"))
if monkey.is_object_patched("time", "sleep"):
    start = time.monotonic()
    corun.joinall([corun.spawn(time.sleep, 0.3) for _ in range(10)], raise_error=True)
    print(time.monotonic() - start < 1.5)
"""


def test_the_standard_library_is_patched_before_the_script_runs(tmp_path: Path) -> None:
    script(tmp_path / "check.py", CHECK_PATCHED)
    proc = corun("check.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # Ten 0.3 s sleeps in under 1.5 s: they ran together.
    assert proc.stdout == "True\nTrue\n"
    assert proc.stderr == ""


def test_no_time_leaves_time_alone(tmp_path: Path) -> None:
    script(tmp_path / "check.py", CHECK_PATCHED)
    proc = corun("--no-time", "check.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "False\n"), proc.stderr


def test_every_no_option_and_strict_are_accepted(tmp_path: Path) -> None:
    script(tmp_path / "check.py", "from corun import monkey\nprint(sorted(monkey.saved))\n")
    proc = corun(*[f"--no-{area}" for area in AREAS], "--strict", "check.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "[]\n", "")


def test_verbose_reports_on_stderr_only(tmp_path: Path) -> None:
    script(tmp_path / "hello.py", "print('hello')\n")
    proc = corun("--verbose", "--no-socket", "hello.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\n"
    assert "corun: patched time: sleep" in proc.stderr
    # dns, which is not turned off, waits for socket.
    assert "corun: patched once the program imports it: socket, sqlite3, ssl, subprocess," in proc.stderr
    assert "left alone: socket" in proc.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(tmp_path: Path, flag: str) -> None:
    proc = corun(flag, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("usage: python -m corun")
    for option in ["--strict", "--verbose", "-m module"]:
        assert option in proc.stdout
    lines = proc.stdout.splitlines()
    for area in _areas.AREAS:
        # One line per area: its option, then what it covers.
        [line] = [line for line in lines if line.split()[:1] == [f"--no-{area.name}"]]
        assert line.endswith(area.description)


# A runner that knows one more area, declared where the others are and nowhere else.
RUNNER_WITH_NEW_AREA = """\
import sys
sys.path.insert(0, {here!r})
import corun.patches
corun.patches.__path__.insert(0, {fakes!r})
from corun.monkey import _areas
_areas.AREAS = (*_areas.AREAS, _areas.Area("widget", ("widget",), "widgets that wait"))
from corun.monkey.runner import main
sys.exit(main())
"""


@pytest.mark.parametrize("options", [(), ("--no-widget",)])
def test_a_new_area_gets_its_option_and_help_from_its_declaration(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    script(tmp_path / "widgetlib.py", "def wait():\n    return 'blocking'\n")
    script(
        tmp_path / "fakes" / "widget.py",
        """
        __target__ = "widgetlib"
        __implements__ = ["wait"]
        def wait():
            return "cooperative"
        """,
    )
    script(tmp_path / "show.py", "import time, widgetlib\nprint(widgetlib.wait(), time.sleep.__module__)\n")
    runner = script(
        tmp_path / "runner.py", RUNNER_WITH_NEW_AREA.format(here=str(tmp_path), fakes=str(tmp_path / "fakes"))
    )
    helped = run([sys.executable, str(runner), "--help"], tmp_path)
    assert "--no-widget" in helped.stdout
    assert [line.split(None, 1) for line in helped.stdout.splitlines() if "widget" in line] == [
        ["--no-widget", "widgets that wait"]
    ]
    proc = run([sys.executable, str(runner), "--verbose", *options, "show.py"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    if options:
        assert proc.stdout == "blocking corun.patches.time\n"
        assert "corun: left alone: widget" in proc.stderr
    else:
        assert proc.stdout == "cooperative corun.patches.time\n"
        assert "corun: patched widgetlib: wait" in proc.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "no script given"),
        (("--frobnicate", "x.py"), "unknown option --frobnicate"),
        (("--verbose", "-m"), "argument expected for the -m option"),
        (("-c",), "argument expected for the -c option"),
    ],
)
def test_bad_command_lines_exit_2(tmp_path: Path, args: tuple[str, ...], complaint: str) -> None:
    proc = corun(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"corun: {complaint}\n")
    assert "--help" in proc.stderr


# -- the console script ------------------------------------------------------------------


def test_main_as_a_console_script_calls_it(tmp_path: Path) -> None:
    # What the generated `corun` wrapper does, from an unrelated sys.path[0].
    shown = script(tmp_path / "sub" / "show.py", SHOW_START)
    wrapper = "import sys\nfrom corun.monkey.runner import main\nsys.exit(main())"
    ours = run([sys.executable, "-c", wrapper, "sub/show.py", "a"], tmp_path)
    plain = python("sub/show.py", "a", cwd=tmp_path)
    assert (ours.returncode, ours.stdout, ours.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert json.loads(ours.stdout)["path0"] == str(shown.parent)


def test_installed_console_script(tmp_path: Path) -> None:
    command = shutil.which("corun", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("the corun console script is not installed in this environment")
    script(tmp_path / "show.py", SHOW_START)
    ours = run([command, "show.py", "a"], tmp_path)
    plain = python("show.py", "a", cwd=tmp_path)
    assert (ours.returncode, ours.stdout, ours.stderr) == (plain.returncode, plain.stdout, plain.stderr)


# -- threads that wait on one fd together ------------------------------------------------

POOL_MAP = """\
import multiprocessing, time
def sq(x):
    time.sleep(0.3); return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(4) as p:
        print(sum(p.map(sq, range(16))))
"""


def test_a_multiprocessing_pool_map_as_under_python(tmp_path: Path) -> None:
    # The pool's worker-handler thread waits in connection.wait() on the result
    # pipe while its result-handler thread reads that pipe, and closing the pool
    # takes a process-shared lock the workers hold.
    script(tmp_path / "pool_map.py", POOL_MAP)
    started = time.monotonic()
    proc = same(["pool_map.py"], tmp_path)
    assert proc.stdout == f"{sum(x * x for x in range(16))}\n"
    # Both runs together: one after another, sixteen waits of 0.3 s would take 9.6 s;
    # four workers take about 2.4 s.
    assert time.monotonic() - started < 7


SELECT_BESIDE_RECV = """\
import select, socket, threading
a, b = socket.socketpair()
seen = {}
def selecting():
    r, _, _ = select.select([a], [], [])
    seen["select"] = r == [a]
def receiving():
    seen["recv"] = a.recv(100)
threads = [threading.Thread(target=selecting), threading.Thread(target=receiving)]
for t in threads:
    t.start()
b.sendall(b"hello")
threads[1].join()
b.close()  # end of file: readable for good, whoever took the data
threads[0].join()
print(sorted(seen.items()))
"""

TWO_READERS_ONE_PIPE = """\
import os, threading
r, w = os.pipe()
got = []
def reader():
    for _ in range(3):
        got.append(os.read(r, 2))
readers = [threading.Thread(target=reader) for _ in range(2)]
for t in readers:
    t.start()
for n in range(6):
    os.write(w, b"m%d" % n)
for t in readers:
    t.join()
print(sorted(got))
"""


@pytest.mark.parametrize(
    "name, source", [("select_beside_recv", SELECT_BESIDE_RECV), ("two_readers", TWO_READERS_ONE_PIPE)]
)
def test_threads_waiting_on_one_fd_as_under_python(tmp_path: Path, name: str, source: str) -> None:
    script(tmp_path / f"{name}.py", source)
    proc = same([f"{name}.py"], tmp_path)
    if name == "two_readers":
        assert proc.stdout == f"{sorted(b'm%d' % n for n in range(6))}\n"
    else:
        assert proc.stdout == "[('recv', b'hello'), ('select', True)]\n"


def test_closing_a_socket_wakes_every_thread_waiting_on_it(tmp_path: Path) -> None:
    # Plain threads would sleep on in recv(); under the runner the close wakes
    # every one of them with EBADF, as the hub promises.
    script(
        tmp_path / "close_wakes.py",
        """\
        import errno, socket, threading, time
        a, b = socket.socketpair()
        errors = []
        def receiving():
            try:
                a.recv(10)
            except OSError as exc:
                errors.append(exc.errno)
        threads = [threading.Thread(target=receiving) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        a.close()
        for t in threads:
            t.join()
        print(errors == [errno.EBADF] * 3)
        """,
    )
    proc = corun("close_wakes.py", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True\n", "")


# -- start-up -----------------------------------------------------------------------------

# What patching does not need, imported only once a program uses what does:
# corun's primitives and statistics (dataclasses, and inspect with it), the
# thread pool, the monitor's machinery, the printing of tracebacks; and the
# stdlib modules whose twins wait for the program to import them.
NOT_NEEDED_BY_PATCHING = [
    "_ssl",
    "socket",
    "ssl",
    "sqlite3",
    "subprocess",
    "corun.patches.dns",
    "corun.patches.socket",
    "corun.patches.ssl",
    "corun.patches.sqlite3",
    "corun.patches.subprocess",
    "ast",
    "dataclasses",
    "dis",
    "inspect",
    "ipaddress",
    "pathlib",
    "traceback",
    "corun._hubstats",
    "corun.event",
    "corun.lock",
    "corun.monitor._dump",
    "corun.monitor._watch",
    "corun.pool",
    "corun.queue",
    "corun.taskgroup",
    "corun.threadpool",
]

SHOW_MODULES = "import json, sys\nprint(json.dumps(sorted(sys.modules)))\n"


def test_start_up_imports_only_what_patching_needs(tmp_path: Path) -> None:
    script(tmp_path / "modules.py", SHOW_MODULES)
    plain = python("modules.py", cwd=tmp_path)
    ours = corun("modules.py", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    before, after = set(json.loads(plain.stdout)), set(json.loads(ours.stdout))
    assert {"corun.patches.thread", "corun.patches.threading", "corun.patches.time"} <= after
    # What python imports at start-up without corun (a site hook may) is not corun's doing.
    assert sorted(set(NOT_NEEDED_BY_PATCHING) & after - before) == []


# Every name ``import corun`` has offered, each imported when first used.
PUBLIC_NAMES = {
    "AsyncResult", "BlockingSwitchOutError", "BoundedSemaphore", "Channel", "ConcurrentObjectUseError",
    "Event", "Greenlet", "GreenletExit", "Group", "JoinableQueue", "LifoQueue", "Lock", "LoopExit",
    "Pool", "PriorityQueue", "Queue", "RLock", "Semaphore", "TaskGroup", "ThreadPool", "Timeout",
    "await_", "dump", "get_hub", "getcurrent", "idle", "iwait", "joinall", "kill", "killall",
    "signal_handler", "sleep", "spawn", "spawn_later", "stats", "to_async", "wait", "with_timeout",
}  # fmt: skip

SHOW_PUBLIC_NAMES = """
import json, sys
import corun
listed = sorted(corun.__all__)
in_dir = sorted(set(listed) & set(dir(corun)))
before = "corun.queue" in sys.modules
from corun import Queue
from corun import *
print(json.dumps({
    "listed": listed, "in_dir": in_dir, "queue_before": before, "queue_after": "corun.queue" in sys.modules,
    "star": sorted(name for name in listed if globals().get(name) is getattr(corun, name)),
    "same_queue": Queue is corun.queue.Queue, "hub_module": corun.hub.get_hub is corun.get_hub,
    "threadpool": type(corun.get_hub().threadpool).__name__,
}))
"""


def test_every_public_name_is_there_on_first_use(tmp_path: Path) -> None:
    script(tmp_path / "names.py", SHOW_PUBLIC_NAMES)
    proc = python("names.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert set(seen["listed"]) == PUBLIC_NAMES
    assert seen["in_dir"] == seen["listed"] == seen["star"]
    assert (seen["queue_before"], seen["queue_after"], seen["same_queue"]) == (False, True, True)
    assert seen["hub_module"]
    # gevent's get_hub().threadpool, before anything imported corun.threadpool.
    assert seen["threadpool"] == "ThreadPool"
