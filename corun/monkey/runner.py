"""``python -m corun [options] script.py [args]``: patch first, then run the script as python would.

Also ``-m module`` and ``-c command``, as python takes them.  What "as python
would" covers, each checked against ``python script.py``:
``sys.argv``, a fresh ``__main__`` module in ``sys.modules`` (so pickling a
class defined in the script works), ``__file__``, ``sys.path[0]``, the exit
status, and tracebacks that start in the script, not in this runner.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import CodeType, ModuleType, TracebackType

__all__ = ["main"]

_USAGE = """\
usage: python -m corun [options] script.py [args...]
       python -m corun [options] -m module [args...]
       python -m corun [options] -c command [args...]

Make the standard library cooperative (corun.monkey.patch_all), then run the
script, module or command exactly as `python script.py`, `python -m module`
or `python -c command` would.  The children that multiprocessing starts
with its spawn and forkserver methods run under corun with the same options.

areas of the standard library, each patched unless its --no- option is given:
{areas}
options:
{options}"""

_OPTIONS = (
    ("--monitor[=SECONDS]", "report each time a task holds the hub longer than SECONDS (0.1)"),
    ("--dump-on SIGNAL", "write every task's stack to stderr when SIGNAL (e.g. SIGUSR1) arrives"),
    ("--strict", "refuse to run if patching comes too late (instead of warning)"),
    ("--verbose", "print what was patched to stderr"),
    ("-h, --help", "show this help and exit"),
)


def _usage() -> str:
    """The --help text, with one ``--no-<area>`` option per declared area."""
    from ._areas import AREAS

    areas = [(f"--no-{area.name}", area.description) for area in AREAS]
    width = max(len(option) for option, _ in [*areas, *_OPTIONS]) + 2

    def lines(options: Iterable[tuple[str, str]]) -> str:
        return "".join(f"  {option:<{width}}{text}\n" for option, text in options)

    return _USAGE.format(areas=lines(areas), options=lines(_OPTIONS))


class _UsageError(Exception):
    """A bad command line; the message is printed with the usage hint."""


class _CommandLine:
    """What the runner was asked to do."""

    # A plain class: importing ``dataclasses`` (and ``inspect`` with it) would
    # add milliseconds to every start-up.
    def __init__(self, target: str, args: list[str]) -> None:
        self.target = target  # a script path, a module name with ``module``, or code with ``command``
        self.args = args  # the script's own arguments
        self.module = False
        self.command = False
        self.flags: dict[str, bool] = {}  # patch_all keywords turned off
        self.strict = False
        self.verbose = False
        self.monitor: float | None = None  # the blocking monitor's threshold, when it is on
        self.dump_on: int | None = None  # the signal that dumps every task


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    The script's own ``sys.exit`` and uncaught exceptions end the process as
    they would under plain python.
    """
    try:
        command = _parse(sys.argv[1:] if argv is None else list(argv))
    except _UsageError as exc:
        print(f"corun: {exc}\nTry 'python -m corun --help' for more information.", file=sys.stderr)
        return 2
    if command is None:
        print(_usage(), end="")
        return 0

    from corun import monkey

    try:
        monkey.patch_all(**command.flags, strict=command.strict)
    except monkey.LatePatchError as exc:
        print(exc, file=sys.stderr)
        return 1
    if command.verbose:
        _report_patching(command.flags)
    if command.monitor is not None or command.dump_on is not None:
        from corun import monitor

        if command.monitor is not None:
            monitor.enable(command.monitor)
        if command.dump_on is not None:
            monitor.dump_on(command.dump_on)
    if monkey.saved:
        # Something was patched: the interpreters multiprocessing starts are patched alike.
        from ._children import start_children_alike

        start_children_alike([f"--no-{name}" for name, on in command.flags.items() if not on])

    if command.module:
        return _run_module(command.target, command.args)
    if command.command:
        return _run_command(command.target, command.args)
    return _run_path(command.target, command.args)


def _parse(argv: list[str]) -> _CommandLine | None:
    """Read the runner's options, up to the script or ``-m module``; None for --help."""
    from ._areas import names

    areas = names()
    options = _CommandLine(target="", args=[])
    while argv:
        arg = argv.pop(0)
        if arg in ("-h", "--help"):
            return None
        if arg == "--strict":
            options.strict = True
        elif arg == "--verbose":
            options.verbose = True
        elif arg == "--monitor" or arg.startswith("--monitor="):
            options.monitor = _monitor_threshold(arg)
        elif arg == "--dump-on" or arg.startswith("--dump-on="):
            if arg == "--dump-on":
                if not argv:
                    raise _UsageError("argument expected for the --dump-on option")
                arg = "=" + argv.pop(0)
            options.dump_on = _signal_number(arg.partition("=")[2])
        elif arg.startswith("--no-") and arg[5:] in areas:
            options.flags[arg[5:]] = False
        elif arg.startswith(("-m", "-c")):  # also -mpackage.module and -ccode, as python accepts
            option = arg[:2]
            if arg == option:
                if not argv:
                    raise _UsageError(f"argument expected for the {option} option")
                arg = argv.pop(0)
            else:
                arg = arg[2:]
            options.module, options.command = option == "-m", option == "-c"
            options.target, options.args = arg, argv
            return options
        elif arg == "--":
            break
        elif arg.startswith("-") and arg != "-":
            raise _UsageError(f"unknown option {arg}")
        else:
            options.target, options.args = arg, argv
            return options
    if not argv:
        raise _UsageError("no script given")
    options.target, options.args = argv[0], argv[1:]
    return options


def _monitor_threshold(arg: str) -> float:
    """The threshold of ``--monitor`` or ``--monitor=SECONDS``."""
    from corun.monitor import DEFAULT_THRESHOLD, _watch

    if arg == "--monitor":
        return DEFAULT_THRESHOLD
    try:
        return _watch.parse_seconds(arg.partition("=")[2], "--monitor")
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _signal_number(name: str) -> int:
    """The signal ``--dump-on`` names (``SIGUSR1``, ``USR1`` or a number)."""
    from corun.monitor import _dump

    try:
        return _dump.parse_signal(name)
    except ValueError as exc:
        raise _UsageError(f"--dump-on: {exc}") from None


def _report_patching(flags: dict[str, bool]) -> None:
    """For --verbose: what was patched, what has no cooperative version yet, what was turned off."""
    from corun import monkey

    from . import _deferred
    from ._areas import AREAS

    for module_name, originals in monkey.saved.items():
        print(f"corun: patched {module_name}: {', '.join(originals)}", file=sys.stderr)
    waiting = _deferred.waiting()
    if waiting:
        print(f"corun: patched once the program imports it: {', '.join(waiting)}", file=sys.stderr)
    missing = [
        area.name
        for area in AREAS
        if flags.get(area.name, True) and not any(monkey._exists(name) for name in area.modules)
    ]
    if missing:
        print(f"corun: no cooperative version yet of: {', '.join(missing)}", file=sys.stderr)
    disabled = [area.name for area in AREAS if not flags.get(area.name, True)]
    if disabled:
        print(f"corun: left alone: {', '.join(disabled)}", file=sys.stderr)


# -- running -------------------------------------------------------------------


def _adds_path0() -> bool:
    """Whether python puts the script's directory in ``sys.path[0]`` (not under -I or -P)."""
    return not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))


def _fresh_main() -> ModuleType:
    """Put a new, empty ``__main__`` module in ``sys.modules``, as the interpreter starts with."""
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__annotations__ = {}
    sys.modules["__main__"] = main
    return main


def _run_path(path: str, args: list[str]) -> int:
    """Run a script file, or a directory or zip file holding ``__main__.py``."""
    import os
    import pkgutil

    sys.argv[:] = [path, *args]
    if path and pkgutil.get_importer(path) is not None:
        # A directory or zip file: python puts it on sys.path and runs its __main__.
        if _adds_path0():
            sys.path[0] = os.path.abspath(path)
        return _run_main_module("__main__", set_argv0=False)

    filename = os.path.abspath(path)
    try:
        import io

        with io.open_code(filename) as f:
            source = f.read()
    except OSError as exc:
        print(f"corun: can't open file {filename!r}: [Errno {exc.errno}] {exc.strerror}", file=sys.stderr)
        return 2
    if _adds_path0():
        sys.path[0] = os.path.dirname(os.path.realpath(filename))

    from importlib.machinery import SourceFileLoader

    main = _fresh_main()
    main.__file__ = filename
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = SourceFileLoader("__main__", filename)
    _execute(lambda: compile(source, filename, "exec", dont_inherit=True), main)
    return 0


def _run_module(name: str, args: list[str]) -> int:
    """Run a module as ``python -m name`` does."""
    import os

    sys.argv[:] = ["-m", *args]  # what python shows while it looks the module up
    if _adds_path0():
        sys.path[0] = os.getcwd()
    return _run_main_module(name, set_argv0=True)


def _run_command(source: str, args: list[str]) -> int:
    """Run a command given as a string, as ``python -c source`` does."""
    sys.argv[:] = ["-c", *args]
    if _adds_path0():
        sys.path[0] = ""  # the current directory, whichever it is at each import
    from importlib.machinery import BuiltinImporter

    main = _fresh_main()
    main.__loader__ = BuiltinImporter
    _quote_command_in_tracebacks(source)
    _execute(lambda: compile(source, "<string>", "exec", dont_inherit=True), main)
    return 0


def _quote_command_in_tracebacks(source: str) -> None:
    """From 3.13 on, ``python -c`` gives ``linecache`` the command, so that tracebacks quote its lines."""
    if sys.version_info >= (3, 13):
        import linecache

        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache["<string>"] = (len(source), None, lines, "<string>")


def _run_main_module(name: str, *, set_argv0: bool) -> int:
    """Find module ``name`` as ``python -m`` does and run it as ``__main__``."""
    # runpy's helpers are private but are exactly what the interpreter itself
    # uses for -m and for directories; they exist unchanged on 3.10-3.13.
    import runpy

    main = _fresh_main()
    try:
        if name == "__main__":
            # Looked up with __main__ out of sys.modules; our fresh one goes back afterwards.
            _, spec, code = runpy._get_main_module_details(runpy._Error)  # type: ignore[attr-defined]
        else:
            _, spec, code = runpy._get_module_details(name, runpy._Error)  # type: ignore[attr-defined]
    except runpy._Error as exc:  # type: ignore[attr-defined]
        print(f"corun: {exc}", file=sys.stderr)
        return 1
    if set_argv0:
        sys.argv[0] = spec.origin
    main.__spec__ = spec
    main.__file__ = spec.origin
    main.__cached__ = spec.cached  # type: ignore[attr-defined]
    main.__loader__ = spec.loader
    main.__package__ = spec.parent
    _execute(lambda: code, main)
    return 0


def _execute(get_code: Callable[[], CodeType], main: ModuleType) -> None:
    """Compile and run code in ``main``; report an uncaught exception as python does, then exit."""
    try:
        exec(get_code(), vars(main))
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _report(exc)
        # Re-raised so the interpreter ends by SIGINT after its usual shutdown
        # (joining threads, atexit), as for any script; it was reported already.
        _mute_report_of(exc)
        raise
    except BaseException as exc:
        _report(exc)
        raise SystemExit(1) from None


def _report(exc: BaseException) -> None:
    """Print ``exc`` through ``sys.excepthook`` without this runner's frames."""
    tb = _without_runner_frames(exc.__traceback__)
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    sys.excepthook(type(exc), exc, tb)


def _without_runner_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame of the program run (this runner's and runpy's cut off)."""
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in (__name__, "runpy"):
        tb = tb.tb_next
    return tb


def _mute_report_of(exc: BaseException) -> None:
    """Make the interpreter's final ``sys.excepthook`` call skip ``exc`` (once)."""
    hook = sys.excepthook

    def already_reported(exc_type: Any, value: Any, tb: Any) -> None:
        sys.excepthook = hook
        if value is not exc:
            hook(exc_type, value, tb)

    sys.excepthook = already_reported
