"""corun.celery's worker pool in real ``celery worker`` processes on a real Redis broker and result backend.

Each worker is started as Celery's users start it (``python -m celery ...
worker -P custom`` with ``CELERY_CUSTOM_WORKER_POOL=corun.celery:TaskPool``,
or ``python -m corun -m celery ...``); clients are fresh interpreters that
send tasks and wait for their results.  The project's tasks never mention
corun: their ``time.sleep``, ``requests`` calls, locks and sockets only
suspend their own task because the pool patched the worker first.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socketserver
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_service import RedisServer, running_redis

from .conftest import ROOT, process_group, run_python

pytest.importorskip("celery")
pytest.importorskip("redis")

pytestmark = pytest.mark.timeout(60)

# The project a user would write; the tests' clients import it too.
PROJECT = '''
import os
import socket
import threading
import time

import requests
from celery import Celery, current_task
from celery.exceptions import SoftTimeLimitExceeded

app = Celery("proj", broker=os.environ["BROKER_URL"], backend=os.environ["BROKER_URL"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_track_started=True,
    result_expires=600,
    worker_hijack_root_logger=True,
)


def mark(name, value="1"):
    """Leave a note in Redis for the test to read (what the task saw)."""
    app.backend.client.set(f"note:{name}", value)


@app.task
def fetch(i, url):
    time.sleep(0.5)
    body = requests.get(f"{url}/{i}", timeout=10).text
    return f"{i}:{body}"


@app.task
def double(x):
    return 2 * x


@app.task
def nap(seconds, note=None):
    if note:
        mark(note + ":started", str(time.time()))
    try:
        time.sleep(seconds)
    finally:
        if note:
            mark(note + ":left", str(time.time()))
    return current_task.request.hostname


@app.task(soft_time_limit=0.5, time_limit=10)
def overslept():
    try:
        time.sleep(8)
    except SoftTimeLimitExceeded:
        time.sleep(0.1)  # clean-up may still wait: the task runs on after a soft limit
        return "cleaned up"
    return "overslept"


@app.task(time_limit=0.5)
def stuck_in_lock():
    lock = threading.Lock()
    lock.acquire()
    try:
        lock.acquire()  # never released
    finally:
        mark("lock:unwound")


@app.task(time_limit=0.5)
def stuck_in_socket():
    a, b = socket.socketpair()
    with a, b:
        try:
            return a.recv(1)  # nothing is ever sent
        finally:
            mark("socket:unwound")
'''


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.2)
        body = f"slow{self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _SlowServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    """A local HTTP server answering each GET after 0.2 s, many at once."""
    server = _SlowServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Project:
    """The project's directory and broker, and how to start workers and clients on them."""

    def __init__(self, directory: Path, broker_url: str) -> None:
        self.directory = directory
        self.broker_url = broker_url
        (directory / "proj.py").write_text(PROJECT)
        self.env = dict(os.environ)
        self.env.update(
            BROKER_URL=broker_url,
            CELERY_CUSTOM_WORKER_POOL="corun.celery:TaskPool",
            PYTHONPATH=os.pathsep.join([str(directory), str(ROOT)]),
        )

    @contextlib.contextmanager
    def worker(
        self, name: str, *options: str, runner: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> Iterator[Worker]:
        """A running ``celery worker -P custom`` (under ``runner``, e.g. ``-m corun``), killed after."""
        log = self.directory / f"{name}.log"
        command = [
            sys.executable,
            *runner,
            "-m",
            "celery",
            "-A",
            "proj",
            "worker",
            "-P",
            "custom",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
            *options,
        ]
        with (
            log.open("wb") as out,
            process_group(
                command, cwd=self.directory, env={**self.env, **(env or {})}, stdout=out, stderr=out
            ) as proc,
        ):
            worker = Worker(proc, log)
            worker.wait_for_log("ready.")
            yield worker

    def client(self, source: str, timeout: float = 40) -> Any:
        """Run ``source`` after ``from proj import *`` in a fresh interpreter; return its last JSON line."""
        program = "import json, time\nfrom proj import *\n" + textwrap.dedent(source)
        proc = run_python(program, timeout=timeout, cwd=self.directory, env=self.env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])


class Worker:
    """A worker process and its log."""

    def __init__(self, proc: Any, log: Path) -> None:
        self.proc = proc
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the worker's log within {timeout} s:\n{self.text()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Project:
    return Project(tmp_path_factory.mktemp("proj"), redis_server.fresh_url())


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[Worker]:
    """One worker with ``-c 100`` shared by the tests that only send it tasks."""
    with project.worker("main", "-c", "100") as w:
        yield w


@pytest.fixture
def own_project(tmp_path: Path, redis_server: RedisServer) -> Project:
    """A project on a database of its own: for tests that start and stop their own workers."""
    return Project(tmp_path, redis_server.fresh_url())


def test_the_pool_patches_before_the_worker_machinery_and_kombu_sees_a_green_process(tmp_path: Path) -> None:
    # As celery's command line does for ``-P custom``: celery and
    # celery.concurrency are imported, then the custom pool's module.
    proc = run_python(
        """
        import json, sys, warnings
        warnings.simplefilter("error")
        import celery, celery.concurrency
        pool = celery.concurrency.get_implementation("custom")
        from corun import monkey
        from kombu.utils import compat, functional
        from celery.backends.asynchronous import drainers
        from celery.worker.consumer import consumer
        import time
        print(json.dumps({
            "pool": f"{pool.__module__}:{pool.__name__}",
            "green": pool.is_green,
            "environment": [compat.detect_environment(), compat._detect_environment(),
                            consumer._detect_environment()],
            "drainer": drainers["corun"].__name__,
            "socket patched": monkey.is_module_patched("socket"),
            "kombu sleeps cooperatively": functional.sleep is time.sleep,
        }))
        """,
        env={"CELERY_CUSTOM_WORKER_POOL": "corun.celery:TaskPool"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no late-patching warning either
    assert json.loads(proc.stdout) == {
        "pool": "corun.celery:TaskPool",
        "green": True,
        "environment": ["corun", "corun", "corun"],
        "drainer": "ResultDrainer",
        "socket patched": True,
        "kombu sleeps cooperatively": True,
    }


def test_without_celery_the_import_fails_saying_so_and_patches_nothing() -> None:
    proc = run_python(
        """
        import sys
        sys.modules["celery"] = None  # as if Celery were not installed
        try:
            import corun.celery
        except ImportError as exc:
            print(exc)
        from corun import monkey
        print(monkey.is_module_patched("socket"))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["corun.celery needs Celery 5: pip install 'corun[celery]'", "False"]


def test_a_capture_the_pool_does_not_know_is_still_reported(tmp_path: Path) -> None:
    (tmp_path / "early.py").write_text("from time import sleep\n")
    proc = run_python(
        """
        import celery.concurrency, early
        import corun.celery
        """,
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
    )
    assert proc.returncode == 0, proc.stderr
    assert "MonkeyPatchWarning" in proc.stderr and "module 'early': sleep is time.sleep" in proc.stderr
    assert "kombu" not in proc.stderr and "cffi" not in proc.stderr  # rebound, or harmless


def test_the_worker_timer_runs_cancels_and_repeats_on_the_hub() -> None:
    result = run_python(
        """
        import json, time
        from corun.celery import Timer
        import corun
        timer = Timer()
        ran = []
        timer.call_after(0.2, ran.append, ("once",))
        dropped = timer.call_after(0.1, ran.append, ("dropped",))
        timer.cancel(dropped)
        ticking = timer.call_repeatedly(0.1, ran.append, ("tick",))
        queued = len(timer.queue)
        corun.sleep(0.45)
        timer.cancel(ticking)
        ticks = ran.count("tick")
        corun.sleep(0.3)
        print(json.dumps({"ran": ran, "ticks": ticks, "queued": queued, "left": len(timer)}))
        """
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert "once" in out["ran"] and "dropped" not in out["ran"]
    assert out["queued"] == 2  # the one-off and the repeating entry; the cancelled one is gone
    assert 2 <= out["ticks"] <= 5  # every 0.1 s for 0.45 s
    assert out["ran"].count("tick") == out["ticks"]  # cancelling stopped the repeats
    assert out["left"] == 0


def test_stopping_the_pool_just_after_a_task_ended_returns_at_once() -> None:
    # Cold shutdown calls stop() from its signal handler; under load the task
    # it killed may have ended in the same pass of the hub, before the hub ran
    # the link that takes it out of the pool.  stop() must not wait for it.
    result = run_python(
        """
        import json
        from corun import sleep
        from corun.celery import TaskPool
        pool = TaskPool(4)
        pool.start()
        results = []
        job = pool.on_apply(lambda: "done", callback=results.append)
        sleep(0)  # one pass: the task runs and ends; its links run on the next pass
        ended_but_member = job.greenlet.dead and job.greenlet in pool._pool
        pool.stop()
        print(json.dumps({"ended but a member": ended_but_member, "results": results}))
        """,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"ended but a member": True, "results": ["done"]}


def test_200_tasks_that_sleep_and_fetch_run_100_at_a_time(
    project: Project, worker: Worker, slow_url: str
) -> None:
    result = project.client(
        f"""
        started = time.monotonic()
        pending = [fetch.delay(i, {slow_url!r}) for i in range(200)]
        values = [r.get(timeout=30) for r in pending]
        print(json.dumps({{"values": values, "elapsed": time.monotonic() - started}}))
        """
    )
    assert result["values"] == [f"{i}:slow/{i}" for i in range(200)]
    # Each task waits 0.7 s (0.5 s asleep, 0.2 s for the server): 140 s one
    # after another, about 1.4 s 100 at a time.
    assert result["elapsed"] < 20, result["elapsed"]


def test_a_soft_time_limit_raises_in_the_task_which_cleans_up(project: Project, worker: Worker) -> None:
    result = project.client(
        """
        started = time.monotonic()
        value = overslept.delay().get(timeout=20)
        print(json.dumps({"value": value, "elapsed": time.monotonic() - started}))
        """
    )
    assert result["value"] == "cleaned up"
    assert result["elapsed"] < 5  # the sleep was 8 s
    worker.wait_for_log("Soft time limit (0.5s) exceeded for proj.overslept")


@pytest.mark.parametrize("task", ["stuck_in_lock", "stuck_in_socket"])
def test_a_hard_time_limit_ends_a_task_waiting_in_a_lock_or_a_socket(
    project: Project, worker: Worker, task: str
) -> None:
    note = task.removeprefix("stuck_in_")
    result = project.client(
        f"""
        from celery.exceptions import TimeLimitExceeded
        started = time.monotonic()
        r = {task}.delay()
        try:
            r.get(timeout=20)
            outcome = "returned"
        except TimeLimitExceeded as exc:
            outcome = f"TimeLimitExceeded {{exc}}"
        elapsed = time.monotonic() - started
        unwound = app.backend.client.get("note:{note}:unwound")
        print(json.dumps({{"outcome": outcome, "state": r.state, "elapsed": elapsed,
                           "unwound": unwound is not None, "after": double.delay(21).get(timeout=10)}}))
        """
    )
    assert result["outcome"].startswith("TimeLimitExceeded"), result
    assert result["state"] == "FAILURE"
    assert result["elapsed"] < 5
    assert result["unwound"], "the task's finally did not run"
    assert result["after"] == 42  # the worker goes on serving
    worker.wait_for_log(f"Hard time limit (0.5s) exceeded for proj.{task}")


def test_revoke_with_terminate_kills_the_running_task(project: Project, worker: Worker) -> None:
    result = project.client(
        """
        r = nap.delay(30, "revoked")
        deadline = time.monotonic() + 10
        while r.state != "STARTED" and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        r.revoke(terminate=True)
        while r.state != "REVOKED" and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        while app.backend.client.get("note:revoked:left") is None and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        print(json.dumps({"state": r.state, "elapsed": time.monotonic() - started,
                          "left": app.backend.client.get("note:revoked:left") is not None}))
        """
    )
    assert result["state"] == "REVOKED"
    assert result["left"], "the killed task's finally did not run"
    assert result["elapsed"] < 5  # the task would have slept 30 s


def test_countdown_tasks_wait_on_the_hub_and_run_when_due(project: Project, worker: Worker) -> None:
    result = project.client(
        """
        started = time.monotonic()
        later = [double.apply_async((i,), countdown=1.5) for i in range(20)]
        now = double.delay(100).get(timeout=10)
        first = time.monotonic() - started
        values = [r.get(timeout=20) for r in later]
        print(json.dumps({"now": now, "first": first, "values": values,
                          "elapsed": time.monotonic() - started}))
        """
    )
    assert result["now"] == 200 and result["first"] < 1.4  # not held up behind the countdowns
    assert result["values"] == [2 * i for i in range(20)]
    assert 1.4 <= result["elapsed"] < 10


def test_many_tasks_of_a_corun_client_wait_on_results_through_one_drainer(
    project: Project, worker: Worker
) -> None:
    result = project.client(
        """
        import corun
        import corun.celery
        started = time.monotonic()
        waiting = [corun.spawn(lambda i=i: nap.delay(0.5).get(timeout=20) and double.delay(i).get(timeout=20))
                   for i in range(50)]
        values = [g.get() for g in waiting]
        drainer = type(app.backend.result_consumer.drainer).__name__
        print(json.dumps({"values": values, "elapsed": time.monotonic() - started, "drainer": drainer}))
        """
    )
    assert result["drainer"] == "ResultDrainer"
    assert result["values"] == [2 * i for i in range(50)]
    assert result["elapsed"] < 10  # 50 waits of 0.5 s at once, not 25 s


def test_autoscale_grows_the_pool_under_load_and_shrinks_it_when_idle(own_project: Project) -> None:
    with own_project.worker("scaled", "--autoscale=10,1", env={"AUTOSCALE_KEEPALIVE": "1"}):
        result = own_project.client(
            """
            def concurrency():
                stats = app.control.inspect(timeout=2, limit=1).stats() or {}  # one worker answers
                return [s["pool"]["max-concurrency"] for s in stats.values()]
            before = concurrency()
            started = time.monotonic()
            values = [r.get(timeout=30) for r in [nap.delay(1.5) for _ in range(10)]]
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 15
            after = concurrency()
            while after != [1] and time.monotonic() < deadline:
                time.sleep(0.5)
                after = concurrency()
            print(json.dumps({"before": before, "elapsed": elapsed, "after": after, "n": len(values)}))
            """,
        )
    assert result["before"] == [1]
    assert result["n"] == 10
    # One at a time: 15 s.  The autoscaler looks once a second and grows to 10.
    assert result["elapsed"] < 8, result
    assert result["after"] == [1]


def test_warm_shutdown_lets_the_running_task_finish(own_project: Project) -> None:
    with own_project.worker("warm", "-c", "10") as w:
        result = own_project.client(
            f"""
            import os, signal
            r = nap.delay(2, "warm")
            while r.state != "STARTED":
                time.sleep(0.05)
            os.kill({w.proc.pid}, signal.SIGTERM)
            print(json.dumps({{"value": r.get(timeout=20)}}))
            """
        )
        assert w.proc.wait(timeout=20) == 0
    assert result["value"].startswith("warm@")
    assert "Warm shutdown" in w.text()


def test_cold_shutdown_stops_at_once(own_project: Project) -> None:
    with own_project.worker("cold", "-c", "10") as w:
        own_project.client(
            """
            r = nap.delay(30, "cold")
            while r.state != "STARTED":
                time.sleep(0.05)
            print(json.dumps(r.state))
            """
        )
        signalled_at = time.time()
        w.proc.send_signal(signal.SIGQUIT)
        w.proc.wait(timeout=20)
        elapsed = time.time() - signalled_at
    left_at = own_project.client('print(json.dumps(float(app.backend.client.get("note:cold:left"))))')
    assert 0 <= left_at - signalled_at < 3  # killed at once: its finally ran; it would have slept 30 s
    assert elapsed < 10  # the worker's own loop notices the stop within its 2 s drain interval
    assert "Cold shutdown" in w.text()


def test_two_workers_on_one_broker_share_the_work(own_project: Project) -> None:
    with (
        own_project.worker("first", "-c", "10"),
        own_project.worker("second", "-c", "10", runner=("-m", "corun")),
    ):
        result = own_project.client(
            """
            started = time.monotonic()
            hosts = [r.get(timeout=30) for r in [nap.delay(0.5) for _ in range(40)]]
            print(json.dumps({"hosts": hosts, "elapsed": time.monotonic() - started}))
            """
        )
    names = {host.partition("@")[0] for host in result["hosts"]}
    assert len(result["hosts"]) == 40
    assert names == {"first", "second"}
    # 40 tasks of 0.5 s on 20 slots: about 1 s; on one worker's 10 slots 2 s, one at a time 20 s.
    assert result["elapsed"] < 10
