"""One Flask application, three corun servers: ``/fast`` is answered while ``/slow`` still sleeps.

examples/slow_fast_app.py is an ordinary Flask application: ``/slow`` calls
``time.sleep(4)``, ``/fast`` answers at once.  This program serves it three
ways, each in its own process, side by side:

1. ``corun.wsgi`` under ``patch_all()`` (examples/slow_fast_app.py --serve);
2. gunicorn with corun's worker (``gunicorn -k corun.gunicorn.Worker``);
3. ``python -m corun examples/slow_fast_serve.py``, a script that only calls
   ``WSGIServer(...).serve_forever()`` and is patched by the runner.

For each it asks for ``/slow``, then for ``/fast`` while ``/slow`` sleeps,
and prints how long each answer took.  A server that handled one request at
a time would make ``/fast`` wait for ``/slow``.  Without gunicorn installed,
the second way is skipped (``pip install gunicorn``).

Run it:  python examples/slow_fast_demo.py
         python examples/slow_fast_demo.py --slow 1   (a 1 s /slow: quicker)
"""

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent


@dataclass
class Way:
    """One way of serving the application: a label and the command, given a port."""

    label: str
    command: list[str]


@dataclass
class Outcome:
    fast: float  # seconds /fast took
    slow: float  # seconds /slow took
    fast_first: bool  # /fast was answered before /slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ways(port_of: dict[str, int]) -> list[Way]:
    python = sys.executable
    return [
        Way(
            "1. corun.wsgi under patch_all",
            [python, str(EXAMPLES / "slow_fast_app.py"), "--serve", "--port", str(port_of["1"])],
        ),
        Way(
            "2. gunicorn -k corun.gunicorn.Worker",
            [
                python,
                "-m",
                "gunicorn",
                "-k",
                "corun.gunicorn.Worker",
                "-b",
                f"127.0.0.1:{port_of['2']}",
                *gunicorn_flags(),
                "slow_fast_app:app",
            ],
        ),
        Way(
            "3. python -m corun slow_fast_serve.py",
            [python, "-m", "corun", str(EXAMPLES / "slow_fast_serve.py"), "--port", str(port_of["3"])],
        ),
    ]


def gunicorn_flags() -> list[str]:
    """Flags for a quiet, self-contained gunicorn: no shared control socket where gunicorn has one."""
    if find_spec("gunicorn") is None:
        return []
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        return ["--no-control-socket"]
    return []


def get(port: int, path: str, sent: threading.Event | None = None) -> tuple[bytes, float]:
    """GET ``path``; return the body and how long the answer took."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.monotonic()
        conn.request("GET", path, headers={"Connection": "close"})
        if sent is not None:
            sent.set()
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return body, time.monotonic() - started
    finally:
        conn.close()


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            get(port, "/fast")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def try_way(way: Way, port: int, slow_seconds: float) -> Outcome:
    """Start the server, ask for /slow and then /fast, stop the server."""
    env = dict(os.environ)
    env["SLOW_SECONDS"] = str(slow_seconds)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLES), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(way.command, stdout=log, stderr=log, env=env, cwd=ROOT)
        try:
            wait_until_serving(port, proc)
            sent = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(get, port, "/slow", sent)
                sent.wait(10)  # /slow is on its way before /fast's connection is made
                _, fast_time = get(port, "/fast")
                fast_done = time.monotonic()
                _, slow_time = slow.result()
                slow_done = time.monotonic()
            return Outcome(fast_time, slow_time, fast_done < slow_done)
        except BaseException:
            log.seek(0)
            sys.stdout.write(log.read().decode(errors="replace"))
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=float, default=4.0, help="seconds /slow sleeps (default 4)")
    args = parser.parse_args()

    port_of = {key: free_port() for key in "123"}
    todo = ways(port_of)
    have_gunicorn = find_spec("gunicorn") is not None
    if not have_gunicorn:
        todo = [way for way in todo if not way.label.startswith("2.")]

    print(f"the slow/fast Flask app (/slow sleeps {args.slow:g} s), served three ways at once:")
    started = time.monotonic()
    with ThreadPoolExecutor(len(todo)) as pool:
        futures = {way.label: pool.submit(try_way, way, port_of[way.label[0]], args.slow) for way in todo}
        outcomes = {label: future.result() for label, future in futures.items()}
    elapsed = time.monotonic() - started

    concurrent = []
    for way in ways(port_of):
        outcome = outcomes.get(way.label)
        if outcome is None:
            print(f"{way.label}: skipped: gunicorn is not installed (pip install gunicorn)")
            continue
        ok = outcome.fast_first and outcome.fast < 1.0
        concurrent.append(ok)
        state = "while /slow was still sleeping" if ok else "only after /slow"
        print(
            f"{way.label}: /fast answered in {outcome.fast:.2f} s {state};"
            f" /slow answered in {outcome.slow:.2f} s"
        )
    verdict = "yes" if all(concurrent) else "no"
    print(f"every server answered /fast while /slow was sleeping: {verdict} ({len(concurrent)} servers)")
    print(f"total time: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
