"""The measured workloads, and the worker that runs one of them in a fresh process.

``run.py`` starts this file once per sample::

    python bench/workloads.py LIBRARY BENCHMARK N [cpu|wall]

and reads one JSON line from its standard output.  The network benchmarks
are started by ``peers.py`` instead, the other end of their connections,
which adds the port to talk to (0: listen anywhere and print the port)::

    python bench/workloads.py LIBRARY BENCHMARK N wall PORT

A worker imports only the library it measures, so libraries never share a
process (each brings its own hub, and gevent's or eventlet's import must not
change what corun sees).

Every workload is written once against the small ``Lib`` facade below; the
facade hands out the library's own functions and bound methods, so the timed
loops call each library directly, without a wrapper in between.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "ANCHORS",
    "BENCHMARKS",
    "CLOCKS",
    "ECHO_SIZE",
    "HTTP_BODY",
    "LIBRARIES",
    "RUNTIMES",
    "SERVER_ROLES",
    "WITH_PLAIN",
    "Benchmark",
    "Lib",
    "hello_app",
    "load_lib",
    "main",
    "run_networked",
    "run_one",
]

# The runtimes compared, each under its own monkey patching.  ``corun`` is the
# compiled core where it was built (``make compile``), ``corun-pure`` the same
# checkout with CORUN_PURE_PYTHON=1: what compiling gains.
RUNTIMES = ("corun", "corun-pure", "gevent", "eventlet")
# Plus a reference without any runtime: the same calls, one after another, in
# plain unpatched Python.  It runs only the rows that name it (the requests
# clients, where it shows what the HTTP stack costs on its own, and the
# threading rows, where the threads are the OS's).
WITH_PLAIN = (*RUNTIMES, "plain")
# And the anchors beyond the runtimes, also only on the rows that name them:
# asyncio on uvloop (the same work written as coroutines, asyncio streams for
# the echo servers) and a single-threaded C epoll echo server.
ANCHORS = ("uvloop", "c-epoll")
LIBRARIES = (*WITH_PLAIN, *ANCHORS)

# A worker exits with this status when the library is not installed, so the
# driver can drop that column instead of reporting a failure.
EXIT_NOT_INSTALLED = 3


@dataclass
class Lib:
    """The handful of names every workload needs, taken from one library."""

    name: str
    version: str
    sleep: Callable[[float], None]
    spawn: Callable[..., Any]
    joinall: Callable[[list[Any]], Any]
    # Returns (set, clear, wait) of a new event, as bound methods.
    new_event: Callable[[], tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]]
    # Queue(maxsize) with put/get; maxsize None means unbounded.
    queue: Callable[[int | None], Any]
    # The library's monkey patching of everything it patches by default.
    patch_all: Callable[[], Any]
    # The library's TCP server calling handle(socket, address) per connection on
    # 127.0.0.1:port, started: returns the port it listens on and its serve_forever.
    stream_server: Callable[[Callable[[Any, Any], Any], int], tuple[int, Callable[[], Any]]]
    # The library's WSGI server for an application on 127.0.0.1:port, access log
    # off, started: (port, serve_forever).  ``nodelay`` turns Nagle's algorithm
    # off on every connection, for a server that does not do so itself.
    wsgi_server: Callable[[Callable[..., Any], int, bool], tuple[int, Callable[[], Any]]]
    # The interpreter arguments that run a script (its path comes after them)
    # under the library's monkey patching of everything, as its users start one.
    run_script: tuple[str, ...] = ()


# Listen backlog of the servers measured: room for every client of a load
# generator connecting at once.
BACKLOG = 1024


def _load_corun() -> Lib:
    import corun

    def new_event() -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]:
        e = corun.Event()
        return e.set, e.clear, e.wait

    def queue(maxsize: int | None) -> Any:
        # Imported on use, so the other benchmarks do not depend on it.
        from corun.queue import Queue

        return Queue() if maxsize is None else Queue(maxsize)

    def patch_all() -> None:
        import corun.monkey

        corun.monkey.patch_all()

    def stream_server(handle: Callable[[Any, Any], Any], port: int) -> tuple[int, Callable[[], Any]]:
        from corun.server import StreamServer

        server = StreamServer(("127.0.0.1", port), handle, backlog=BACKLOG)
        server.start()
        return server.server_port, server.serve_forever

    def wsgi_server(app: Callable[..., Any], port: int, nodelay: bool) -> tuple[int, Callable[[], Any]]:
        if nodelay:
            raise ValueError("corun.wsgi turns Nagle's algorithm off itself; it has no variant without")
        from corun.wsgi import WSGIServer

        server = WSGIServer(("127.0.0.1", port), app, backlog=BACKLOG, access_log=None)
        server.start()
        return server.server_port, server.serve_forever

    return Lib(
        "corun",
        f"{corun.__version__} ({'compiled' if corun.COMPILED else 'pure Python'})",
        corun.sleep,
        corun.spawn,
        corun.joinall,
        new_event,
        queue,
        patch_all,
        stream_server=stream_server,
        wsgi_server=wsgi_server,
        run_script=("-m", "corun"),
    )


def _load_gevent() -> Lib:
    import gevent
    import gevent.event
    import gevent.queue

    def new_event() -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]:
        e = gevent.event.Event()
        return e.set, e.clear, e.wait

    def queue(maxsize: int | None) -> Any:
        return gevent.queue.Queue() if maxsize is None else gevent.queue.Queue(maxsize)

    def patch_all() -> None:
        import gevent.monkey

        gevent.monkey.patch_all()

    def stream_server(handle: Callable[[Any, Any], Any], port: int) -> tuple[int, Callable[[], Any]]:
        from gevent.server import StreamServer

        server = StreamServer(("127.0.0.1", port), handle, backlog=BACKLOG)
        server.start()
        return server.server_port, server.serve_forever

    def wsgi_server(app: Callable[..., Any], port: int, nodelay: bool) -> tuple[int, Callable[[], Any]]:
        import socket

        from gevent.pywsgi import WSGIServer

        class NoDelayWSGIServer(WSGIServer):
            def handle(self, sock: Any, address: Any) -> None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().handle(sock, address)

        # log=None: no access log (pywsgi writes one to stderr by default).
        server = (NoDelayWSGIServer if nodelay else WSGIServer)(
            ("127.0.0.1", port), app, backlog=BACKLOG, log=None
        )
        server.start()
        return server.server_port, server.serve_forever

    return Lib(
        "gevent",
        gevent.__version__,
        gevent.sleep,
        gevent.spawn,
        gevent.joinall,
        new_event,
        queue,
        patch_all,
        stream_server=stream_server,
        wsgi_server=wsgi_server,
        run_script=("-m", "gevent.monkey"),
    )


def _load_eventlet() -> Lib:
    # eventlet announces its own deprecation on import; that is not a result.
    warnings.simplefilter("ignore")
    import eventlet
    import eventlet.event
    import eventlet.queue

    def new_event() -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]:
        # eventlet spells set/clear as send/reset; the semantics the
        # ping-pong relies on (wait returns once sent, reset re-arms) match.
        e = eventlet.event.Event()
        return e.send, e.reset, e.wait

    def joinall(tasks: list[Any]) -> None:
        for t in tasks:
            t.wait()

    def queue(maxsize: int | None) -> Any:
        return eventlet.queue.Queue(maxsize)

    # eventlet has no server object: listening is done here, and serving by
    # the function returned.
    def stream_server(handle: Callable[[Any, Any], Any], port: int) -> tuple[int, Callable[[], Any]]:
        listener = eventlet.listen(("127.0.0.1", port), backlog=BACKLOG)
        return listener.getsockname()[1], lambda: eventlet.serve(listener, handle, concurrency=100_000)

    def wsgi_server(app: Callable[..., Any], port: int, nodelay: bool) -> tuple[int, Callable[[], Any]]:
        if nodelay:
            raise ValueError("no TCP_NODELAY variant of eventlet.wsgi is measured")
        import eventlet.wsgi

        listener = eventlet.listen(("127.0.0.1", port), backlog=BACKLOG)
        return listener.getsockname()[1], lambda: eventlet.wsgi.server(listener, app, log_output=False)

    return Lib(
        "eventlet",
        eventlet.__version__,
        eventlet.sleep,
        eventlet.spawn,
        joinall,
        new_event,
        queue,
        eventlet.monkey_patch,
        stream_server=stream_server,
        wsgi_server=wsgi_server,
        # eventlet has no runner: patching first, then the script as python runs it.
        run_script=(
            "-W",
            "ignore::DeprecationWarning",
            "-c",
            "import sys, runpy, eventlet; eventlet.monkey_patch(); del sys.argv[0]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')",
        ),
    )


def _load_plain() -> Lib:
    def spawn(func: Callable[..., Any], *args: Any) -> None:
        func(*args)  # no runtime: each "task" runs to its end before the next starts

    def joinall(tasks: list[Any]) -> None:
        pass  # every task has already ended

    def unsupported(*args: Any) -> NoReturn:
        raise ValueError("plain Python is measured only as a client, one call after another")

    def patch_all() -> None:
        pass  # the reference is the unpatched interpreter

    return Lib(
        "plain",
        platform.python_version(),
        time.sleep,
        spawn,
        joinall,
        unsupported,
        unsupported,
        patch_all,
        stream_server=unsupported,
        wsgi_server=unsupported,
    )


def _load_corun_pure() -> Lib:
    # Read when corun is imported: its package then loads the sources, not the compiled modules.
    os.environ["CORUN_PURE_PYTHON"] = "1"
    lib = _load_corun()
    lib.name = "corun-pure"
    return lib


def _anchor(name: str, version: str) -> Lib:
    """The facade of an anchor: nothing of it is called, its rows have workloads of their own."""

    def unsupported(*args: Any) -> NoReturn:
        raise ValueError(
            f"{name} is measured only on the rows written for it ({', '.join(ANCHORED_ROWS[name])})"
        )

    return Lib(
        name,
        version,
        unsupported,
        unsupported,
        unsupported,
        unsupported,
        unsupported,
        lambda: None,  # nothing to patch: the anchors' code is written for their own loop
        stream_server=unsupported,
        wsgi_server=unsupported,
    )


def _load_uvloop() -> Lib:
    import uvloop

    return _anchor("uvloop", uvloop.__version__)


def _load_c_epoll() -> Lib:
    # Built now, so a machine without a compiler reports the anchor as not installed.
    _, compiler = _c_echo_binary()
    return _anchor("c-epoll", compiler)


C_ECHO_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_epoll.c")
C_FLAGS = ("-O2", "-Wall")


def _c_echo_binary() -> tuple[str, str]:
    """Build ``echo_epoll.c`` unless built already; return its path and the compiler's name and version.

    Raises:
        ImportError: named ``c-epoll``, when there is no C compiler (the
            worker then reports the anchor as not installed).
    """
    import hashlib
    import shutil
    import subprocess

    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise ImportError(f"no C compiler ({compiler!r}) to build the C echo server", name="c-epoll")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True)
    described = version.stdout.splitlines()[0] + " " + " ".join(C_FLAGS)
    with open(C_ECHO_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read() + described.encode()).hexdigest()[:12]
    root = os.path.dirname(os.path.dirname(C_ECHO_SOURCE))
    binary = os.path.join(root, "build", "bench", f"echo_epoll-{digest}")
    if not os.path.exists(binary):
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        # Built beside its final name and renamed, so a half-written binary is never run.
        partial = f"{binary}.{os.getpid()}"
        subprocess.run([compiler, *C_FLAGS, "-o", partial, C_ECHO_SOURCE], check=True)
        os.replace(partial, binary)
    return binary, described


_LOADERS: dict[str, Callable[[], Lib]] = {
    "corun": _load_corun,
    "corun-pure": _load_corun_pure,
    "gevent": _load_gevent,
    "eventlet": _load_eventlet,
    "plain": _load_plain,
    "uvloop": _load_uvloop,
    "c-epoll": _load_c_epoll,
}


def load_lib(name: str) -> Lib:
    """Import library ``name`` and return its facade."""
    return _LOADERS[name]()


# -- the workloads ------------------------------------------------------------
#
# A rate workload does its work and returns how many operations it did;
# ``run_one`` times the whole call.  A memory workload returns bytes per task,
# the start-up workload milliseconds.


def sleep0(lib: Lib, n: int) -> int:
    """Two tasks, each calling sleep(0) n times: sleep(0) calls."""
    sleep = lib.sleep

    def loop() -> None:
        for _ in range(n):
            sleep(0)

    lib.joinall([lib.spawn(loop), lib.spawn(loop)])
    return 2 * n


def _noop() -> None:
    pass


def spawn_join(lib: Lib, n: int) -> int:
    """Spawn n trivial tasks, then join them all: tasks."""
    spawn = lib.spawn
    tasks = [spawn(_noop) for _ in range(n)]
    lib.joinall(tasks)
    return n


def event_pingpong(lib: Lib, n: int) -> int:
    """Two tasks hand control back and forth through two Events: round trips."""
    ping_set, ping_clear, ping_wait = lib.new_event()
    pong_set, pong_clear, pong_wait = lib.new_event()

    def pinger() -> None:
        for _ in range(n):
            ping_set()
            pong_wait()
            pong_clear()

    def ponger() -> None:
        for _ in range(n):
            ping_wait()
            ping_clear()
            pong_set()

    lib.joinall([lib.spawn(ponger), lib.spawn(pinger)])
    return n


def _queue_transfer(lib: Lib, n: int, maxsize: int | None) -> int:
    q = lib.queue(maxsize)
    put, get = q.put, q.get

    # One shared item: the figure is about the queue, not about allocating ints.
    item = object()

    def producer() -> None:
        for _ in range(n):
            put(item)

    def consumer() -> None:
        for _ in range(n):
            get()

    lib.joinall([lib.spawn(consumer), lib.spawn(producer)])
    return n


def queue_unbounded(lib: Lib, n: int) -> int:
    """A producer puts n items into an unbounded Queue, a consumer gets them: items."""
    return _queue_transfer(lib, n, None)


def queue_bounded(lib: Lib, n: int) -> int:
    """The same through Queue(1), so every item is a hand-off between the tasks: items."""
    return _queue_transfer(lib, n, 1)


# -- the stdlib's threading primitives under the library's patching ----------------
#
# Code written for OS threads, unmodified: ``threading.Thread``s handing work
# through ``queue.Queue``, ``Condition``, ``Event``, and loops on ``RLock`` and
# ``Semaphore``.  ``run_one`` patches first (``Benchmark.patched``); in the
# ``plain`` column the threads are real OS threads.


def _threads(*targets: Callable[[], None]) -> None:
    import threading

    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _stdlib_queue_pingpong(kind: str, n: int) -> int:
    import queue

    make = getattr(queue, kind)
    ping, pong = make(), make()
    # Orderable for PriorityQueue, shared: the figure is about the queue.
    item = (1,)

    def pinger() -> None:
        put, get = ping.put, pong.get
        for _ in range(n):
            put(item)
            get()

    def ponger() -> None:
        put, get = pong.put, ping.get
        for _ in range(n):
            get()
            put(item)

    _threads(ponger, pinger)
    return n


def thread_queue(lib: Lib, n: int) -> int:
    """Two threads ping-pong one item through two ``queue.Queue``s: round trips."""
    return _stdlib_queue_pingpong("Queue", n)


def thread_lifoqueue(lib: Lib, n: int) -> int:
    """The same through two ``queue.LifoQueue``s: round trips."""
    return _stdlib_queue_pingpong("LifoQueue", n)


def thread_priorityqueue(lib: Lib, n: int) -> int:
    """The same through two ``queue.PriorityQueue``s: round trips."""
    return _stdlib_queue_pingpong("PriorityQueue", n)


def thread_rlock(lib: Lib, n: int) -> int:
    """One thread entering and leaving a ``threading.RLock`` n times: ``with`` blocks."""
    import threading

    lock = threading.RLock()

    def loop() -> None:
        for _ in range(n):
            with lock:
                pass

    _threads(loop)
    return n


def thread_semaphore(lib: Lib, n: int) -> int:
    """One thread acquiring and releasing a ``threading.Semaphore`` n times: pairs."""
    import threading

    sem = threading.Semaphore()

    def loop() -> None:
        acquire, release = sem.acquire, sem.release
        for _ in range(n):
            acquire()
            release()

    _threads(loop)
    return n


def thread_condition(lib: Lib, n: int) -> int:
    """Two threads taking turns through one ``threading.Condition``: round trips."""
    import threading

    cond = threading.Condition()
    turn = [0]

    def player(me: int) -> Callable[[], None]:
        def play() -> None:
            wait, notify = cond.wait, cond.notify
            with cond:
                for _ in range(n):
                    while turn[0] != me:
                        wait()
                    turn[0] = 1 - me
                    notify()

        return play

    _threads(player(1), player(0))
    return n


def thread_event(lib: Lib, n: int) -> int:
    """Two threads hand control back and forth through two ``threading.Event``s: round trips."""
    import threading

    ping, pong = threading.Event(), threading.Event()

    def pinger() -> None:
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()

    def ponger() -> None:
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    _threads(ponger, pinger)
    return n


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        # Peak, not current, RSS; good enough for a measurement that only grows.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _idle_tasks(lib: Lib, n: int, measure: Callable[[], int]) -> float:
    sleep = lib.sleep
    started = 0

    def idle() -> None:
        nonlocal started
        started += 1
        sleep(60)

    def brief() -> None:
        sleep(0.001)

    # Warm up the very paths the idle tasks take (spawn, first switch, timed
    # sleep), so one-time allocations of the library are not charged to them.
    lib.joinall([lib.spawn(brief) for _ in range(200)])
    gc.collect()
    before = measure()
    tasks = [lib.spawn(idle) for _ in range(n)]
    # Once the main task runs again after the n-th start, every idle task has
    # switched out into its sleep (one thread: nothing else ran in between).
    while started < n:
        sleep(0)
    gc.collect()
    after = measure()
    assert len(tasks) == n
    return (after - before) / n


def memory_rss(lib: Lib, n: int) -> float:
    """n tasks parked in sleep(60): resident memory growth per task, in bytes."""
    return _idle_tasks(lib, n, _rss)


def startup(lib: Lib, n: int) -> float:
    """n runs of an empty script in a fresh interpreter under the library's patching: median wall ms.

    Each run is a whole process, from its start to its exit, as a user
    waits for it.  Bytecode caches are allowed even where the environment
    turns them off (``PYTHONDONTWRITEBYTECODE``), as an installed package has
    them: otherwise a library run from a source checkout would be timed
    compiling itself.  The first run, which writes any that are missing, is
    not counted.
    """
    import statistics
    import subprocess
    import tempfile

    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "empty.py")
        with open(script, "w"):
            pass
        command = [sys.executable, *lib.run_script, script]
        times = []
        for i in range(n + 1):
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env)
            if i:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def memory_traced(lib: Lib, n: int) -> float:
    """The same, counted by tracemalloc: what went through Python's allocators, in bytes."""
    import tracemalloc

    tracemalloc.start()
    return _idle_tasks(lib, n, lambda: tracemalloc.get_traced_memory()[0])


# -- the network workloads -------------------------------------------------------
#
# The library's side of a conversation with another process, written the way
# an application is written: the plain blocking stdlib (and requests), made
# cooperative by the library's monkey patching, one task per connection.  The
# other side (``peers.py``) uses no library at all, runs in its own process
# and starts this one; ``port`` is where its server listens, or 0 when this
# side is the server.

ECHO_SIZE = 64
HTTP_CONCURRENCY = 100
HTTP_BODY = b"Hello, World!"
# An echo server left running by a load generator that died ends itself
# after this long, well past any measurement.
ECHO_SERVER_LIFETIME = 300.0


def _announce(lib: Lib, port: int) -> None:
    """Tell the peer where this worker listens, and what it measures."""
    import greenlet

    info = {"port": port, "version": lib.version, "greenlet": greenlet.__version__}
    print(json.dumps(info), flush=True)


def _echo(conn: Any, address: Any = None) -> None:
    """Send back everything received on ``conn`` until the client leaves; then close it."""
    with conn:
        recv, sendall = conn.recv, conn.sendall
        try:
            while True:
                data = recv(4096)
                if not data:
                    return
                sendall(data)
        except ConnectionError:
            return  # a client that leaves with a message in flight resets the connection


def _outlive_peer(lib: Lib) -> None:
    """End this server's process should its peer die without ending it."""

    def give_up() -> None:
        lib.sleep(ECHO_SERVER_LIFETIME)
        print("server: nobody ended this process; giving up", file=sys.stderr, flush=True)
        os._exit(1)

    lib.spawn(give_up)


def echo_server(lib: Lib, n: int, port: int) -> NoReturn:
    """A TCP echo server on blocking sockets, one task per connection, serving until ended.

    ``n`` is the peer's business (how long it measures); this side only serves.
    """
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    _outlive_peer(lib)
    _announce(lib, listener.getsockname()[1])
    spawn, accept = lib.spawn, listener.accept
    while True:
        conn, _ = accept()
        spawn(_echo, conn)


def stream_echo_server(lib: Lib, n: int, port: int) -> NoReturn:
    """The same echo handler, served by the library's own server class (StreamServer)."""
    bound, serve_forever = lib.stream_server(_echo, port)
    _outlive_peer(lib)
    _announce(lib, bound)
    serve_forever()
    raise RuntimeError("the stream server stopped")


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The WSGI application of the WSGI benchmarks: a fixed 13-byte answer."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HTTP_BODY)))])
    return [HTTP_BODY]


def _serve_wsgi(lib: Lib, port: int, nodelay: bool) -> NoReturn:
    bound, serve_forever = lib.wsgi_server(hello_app, port, nodelay)
    _outlive_peer(lib)
    _announce(lib, bound)
    serve_forever()
    raise RuntimeError("the WSGI server stopped")


def wsgi_server(lib: Lib, n: int, port: int) -> NoReturn:
    """The library's WSGI server as shipped (access log off) answering ``hello_app``, until ended."""
    _serve_wsgi(lib, port, nodelay=False)


def wsgi_server_nodelay(lib: Lib, n: int, port: int) -> NoReturn:
    """The same with TCP_NODELAY set on every connection, for a server that leaves Nagle on."""
    _serve_wsgi(lib, port, nodelay=True)


def _run_by_peer(lib: Lib, n: int, port: int) -> NoReturn:
    raise RuntimeError("this benchmark's server is started by peers.py, not by a worker")


def _requests_load(lib: Lib, n: int, port: int, fetch: Callable[[str, int], int]) -> int:
    """n GETs from 100 tasks, each task calling ``fetch(url, count)``; two ``/mark`` requests bracket them.

    The marks let the server tell how busy it was during the measured part.
    """
    import requests

    url = f"http://127.0.0.1:{port}/"
    tasks = min(HTTP_CONCURRENCY, n)
    done = 0

    def task(count: int) -> None:
        nonlocal done
        fetched = fetch(url, count)  # switches: `done` is read only once it returns
        done += fetched

    requests.get(url + "mark").raise_for_status()
    lib.joinall([lib.spawn(task, n // tasks + (i < n % tasks)) for i in range(tasks)])
    requests.get(url + "mark").raise_for_status()
    if done != n:
        # Not every library's joinall raises a task's error; this does.
        raise RuntimeError(f"only {done} of {n} requests succeeded")
    return n


def _check(response: Any) -> None:
    if response.status_code != 200 or response.content != HTTP_BODY:
        raise RuntimeError(f"unexpected response: {response.status_code} {response.content!r}")


def http_client(lib: Lib, n: int, port: int) -> int:
    """n ``requests.get(url)`` calls from 100 tasks: each call makes its Session and its connection."""
    import requests

    def fetch(url: str, count: int) -> int:
        get = requests.get
        for _ in range(count):
            _check(get(url))
        return count

    return _requests_load(lib, n, port, fetch)


def http_session_client(lib: Lib, n: int, port: int) -> int:
    """n ``Session.get`` calls from 100 tasks, each task with one keep-alive Session."""
    import requests

    def fetch(url: str, count: int) -> int:
        with requests.Session() as session:
            # No proxy or netrc look-ups: they scan the environment on every
            # request, a cost of the machine's environment, not of the library.
            session.trust_env = False
            get = session.get
            for _ in range(count):
                _check(get(url))
        return count

    return _requests_load(lib, n, port, fetch)


# -- the anchors' workloads --------------------------------------------------------
#
# The same work for uvloop, written as asyncio code is written, and the C echo
# server.  They run where a row lists the anchor in its ``libs``, in place of
# the row's own function (``ANCHORED``).


def uvloop_sleep0(lib: Lib, n: int) -> int:
    """Two tasks on uvloop, each awaiting ``asyncio.sleep(0)`` n times: sleep(0) calls."""
    import asyncio

    import uvloop

    async def loop() -> None:
        sleep = asyncio.sleep
        for _ in range(n):
            await sleep(0)

    async def both() -> None:
        await asyncio.gather(loop(), loop())

    uvloop.run(both())
    return 2 * n


async def _async_noop() -> None:
    pass


def uvloop_spawn(lib: Lib, n: int) -> int:
    """Create n trivial tasks on uvloop, then gather them all: tasks."""
    import asyncio

    import uvloop

    async def spawn_all() -> None:
        create_task = asyncio.create_task
        tasks = [create_task(_async_noop()) for _ in range(n)]
        await asyncio.gather(*tasks)

    uvloop.run(spawn_all())
    return n


def uvloop_echo_server(lib: Lib, n: int, port: int) -> NoReturn:
    """An asyncio streams echo server on uvloop, one handler per connection, serving until ended."""
    import asyncio

    import uvloop

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # a client that leaves with a message in flight resets the connection
        finally:
            writer.close()

    async def serve() -> NoReturn:
        server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=BACKLOG)
        _announce(lib, server.sockets[0].getsockname()[1])
        await asyncio.sleep(ECHO_SERVER_LIFETIME)
        print("server: nobody ended this process; giving up", file=sys.stderr, flush=True)
        os._exit(1)

    uvloop.run(serve())
    raise RuntimeError("the uvloop echo server stopped")


def c_echo_server(lib: Lib, n: int, port: int) -> NoReturn:
    """The C epoll echo server (``echo_epoll.c``), in this process, serving until ended.

    The listening socket is made here and the port announced; then this
    process becomes the C server (same pid, so the peer reads its CPU time).
    """
    import socket

    binary, _ = _c_echo_binary()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    listener.set_inheritable(True)
    _announce(lib, listener.getsockname()[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [binary, str(listener.fileno()), str(int(ECHO_SERVER_LIFETIME))])


# Which anchor runs which row, and with what.
ANCHORED: dict[tuple[str, str], Callable[..., float]] = {
    ("uvloop", "sleep0"): uvloop_sleep0,
    ("uvloop", "spawn"): uvloop_spawn,
    ("uvloop", "echo"): uvloop_echo_server,
    ("uvloop", "echo5000"): uvloop_echo_server,
    ("c-epoll", "echo"): c_echo_server,
    ("c-epoll", "echo5000"): c_echo_server,
}
ANCHORED_ROWS = {anchor: [key for lib, key in ANCHORED if lib == anchor] for anchor in ANCHORS}


@dataclass(frozen=True)
class Benchmark:
    """One row of the table: what is measured, how much work, which way is better.

    A rate benchmark's ``func`` returns its operation count, and the figure is
    operations per second; otherwise ``func`` returns the figure itself
    (bytes per task, milliseconds of a start-up), where lower is better.

    A network benchmark names its ``peer``, the role ``peers.py`` plays at the
    other end: ``"echo-load"`` and ``"http-load"`` drive a server and measure
    it themselves (``n`` is then the measured milliseconds),
    ``"gunicorn-http-load"`` does the same to a gunicorn it starts itself,
    ``"http-server"`` answers a client measured here.  Its ``func`` takes the
    peer's port as well, runs under the library's monkey patching, and its
    rate is per wall-clock second, since the work includes waiting for the
    other process; an ``"echo-load"`` peer rates the server per second of
    its process's CPU time instead, as a fast server outpaces the peer.

    ``libs`` names the libraries measured: the runtimes, unless a row
    adds the ``plain`` reference (the requests clients, the start-up) or keeps to one rival
    (a variant of its server).  An anchor listed there (``ANCHORS``) runs the
    workload ``ANCHORED`` gives it for the row instead of ``func``.

    A few rows are not measured on their own:

    - ``source`` names the benchmark whose samples also carry this row's
      figure, under the name ``metric`` (the p99 latency of a load test).
    - A variant row's ``corun_from`` names the benchmark whose corun figure
      the row is compared with, corun not being measured again.
    - ``requires`` lists modules the benchmark cannot run without; it is
      skipped, with a note, where one of them is missing.

    A ``patched`` benchmark runs under the library's monkey patching (made
    before the workload starts, outside the timed part).

    ``clients`` is how many connections an ``"echo-load"`` peer opens (0:
    its default, ``ECHO_CLIENTS``).
    """

    key: str
    title: str
    unit: str
    func: Callable[..., float]
    n: int
    quick_n: int
    higher_is_better: bool = True
    peer: str | None = None
    source: str | None = None
    metric: str | None = None
    libs: tuple[str, ...] = RUNTIMES
    corun_from: str | None = None
    requires: tuple[str, ...] = ()
    patched: bool = False
    clients: int = 0


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("sleep0", "sleep(0), 2 tasks", "calls/s", sleep0, 200_000, 5_000, libs=(*RUNTIMES, "uvloop")),
    Benchmark("spawn", "spawn + joinall", "tasks/s", spawn_join, 100_000, 5_000, libs=(*RUNTIMES, "uvloop")),
    Benchmark("event", "Event ping-pong", "round trips/s", event_pingpong, 100_000, 2_000),
    Benchmark("queue", "Queue() put/get", "items/s", queue_unbounded, 2_000_000, 20_000),
    Benchmark("queue1", "Queue(1) hand-off", "items/s", queue_bounded, 100_000, 2_000),
    # The stdlib's threading primitives between threading.Threads, under each
    # library's own patch_all (plain: real OS threads).
    Benchmark(
        "thread_queue",
        "threads: queue.Queue ping-pong",
        "round trips/s",
        thread_queue,
        50_000,
        1_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_lifoqueue",
        "threads: LifoQueue ping-pong",
        "round trips/s",
        thread_lifoqueue,
        50_000,
        1_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_priorityqueue",
        "threads: PriorityQueue ping-pong",
        "round trips/s",
        thread_priorityqueue,
        50_000,
        1_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_condition",
        "threads: Condition ping-pong",
        "round trips/s",
        thread_condition,
        50_000,
        1_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_event",
        "threads: Event ping-pong",
        "round trips/s",
        thread_event,
        50_000,
        1_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_rlock",
        "threads: RLock with-loop",
        "blocks/s",
        thread_rlock,
        1_000_000,
        10_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark(
        "thread_semaphore",
        "threads: Semaphore acquire/release",
        "pairs/s",
        thread_semaphore,
        1_000_000,
        10_000,
        libs=WITH_PLAIN,
        patched=True,
    ),
    Benchmark("memory", "idle task memory (RSS)", "bytes/task", memory_rss, 10_000, 2_000, False),
    Benchmark(
        "memory_traced", "idle task memory (tracemalloc)", "bytes/task", memory_traced, 10_000, 2_000, False
    ),
    # The library's script runner (or its patch_all, then the script) on an
    # empty script, against plain python running it: what every start pays.
    Benchmark("startup", "start-up: python -m corun empty.py", "ms", startup, 20, 3, False, libs=WITH_PLAIN),
    # Echo rates are per CPU-second of the server's process: the load
    # generator, plain Python, keeps a fast server below a whole CPU.
    Benchmark(
        "echo",
        "echo server, 100 clients",
        "messages/CPU-s",
        echo_server,
        3_000,
        300,
        peer="echo-load",
        libs=(*RUNTIMES, *ANCHORS),
    ),
    # Many connections, one message in flight on each: the readiness back
    # end's cost as the set it watches grows.
    Benchmark(
        "echo5000",
        "echo server, 5000 clients",
        "messages/CPU-s",
        echo_server,
        3_000,
        300,
        peer="echo-load",
        libs=(*RUNTIMES, *ANCHORS),
        clients=5000,
    ),
    Benchmark(
        "http",
        "requests.get, 100 tasks",
        "requests/s",
        http_client,
        2_000,
        200,
        peer="http-server",
        libs=WITH_PLAIN,
    ),
    Benchmark(
        "http_session",
        "Session.get (keep-alive), 100 tasks",
        "requests/s",
        http_session_client,
        2_000,
        200,
        peer="http-server",
        libs=WITH_PLAIN,
    ),
    Benchmark(
        "stream_echo",
        "echo on StreamServer, 100 clients",
        "messages/CPU-s",
        stream_echo_server,
        3_000,
        300,
        peer="echo-load",
    ),
    # corun.wsgi, gevent.pywsgi, eventlet.wsgi; corun.wsgi is built on httptools.
    Benchmark(
        "wsgi",
        "hello WSGI, 50 keep-alive conns",
        "requests/s",
        wsgi_server,
        3_000,
        300,
        peer="http-load",
        requires=("httptools",),
    ),
    Benchmark(
        "wsgi_p99",
        "hello WSGI, p99 latency",
        "ms",
        _run_by_peer,
        0,
        0,
        higher_is_better=False,
        source="wsgi",
        metric="p99_ms",
        requires=("httptools",),
    ),
    # pywsgi leaves Nagle's algorithm on: a keep-alive client can wait for a
    # delayed ACK.  The same server with it off, compared with corun.wsgi.
    Benchmark(
        "wsgi_nodelay",
        "hello WSGI: pywsgi + TCP_NODELAY",
        "requests/s",
        wsgi_server_nodelay,
        3_000,
        300,
        peer="http-load",
        libs=("gevent",),
        corun_from="wsgi",
    ),
    Benchmark(
        "wsgi_nodelay_p99",
        "pywsgi + TCP_NODELAY, p99 latency",
        "ms",
        _run_by_peer,
        0,
        0,
        higher_is_better=False,
        source="wsgi_nodelay",
        metric="p99_ms",
        libs=("gevent",),
        corun_from="wsgi_p99",
    ),
    Benchmark(
        "wsgi_gunicorn",
        "hello WSGI: gunicorn -k gevent -w 1",
        "requests/s",
        _run_by_peer,
        3_000,
        300,
        peer="gunicorn-http-load",
        libs=("gevent",),
        corun_from="wsgi",
        requires=("gunicorn",),
    ),
    Benchmark(
        "wsgi_gunicorn_p99",
        "gunicorn -k gevent, p99 latency",
        "ms",
        _run_by_peer,
        0,
        0,
        higher_is_better=False,
        source="wsgi_gunicorn",
        metric="p99_ms",
        libs=("gevent",),
        corun_from="wsgi_p99",
        requires=("gunicorn",),
    ),
)

# The roles of peers that drive a server in the worker (or one they start
# themselves) and measure it: the worker's side never returns.
SERVER_ROLES = frozenset({"echo-load", "http-load", "gunicorn-http-load"})

# Rates are computed from the process's CPU time by default: every workload
# is one thread computing without waiting on anything, so CPU time is the
# work done, while wall time also counts the moments a busy machine gave the
# CPU to some other process.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def _benchmark(key: str) -> Benchmark:
    return next(b for b in BENCHMARKS if b.key == key)


def run_one(lib_name: str, key: str, n: int, clock: str = "cpu") -> dict[str, Any]:
    """Run benchmark ``key`` once with library ``lib_name``; return the sample as a dict."""
    bench = _benchmark(key)
    lib = load_lib(lib_name)
    if bench.patched:
        lib.patch_all()
    func = ANCHORED.get((lib_name, key), bench.func)
    return _measure(lib, bench, n, clock, lambda n: func(lib, n))


def run_networked(lib_name: str, key: str, n: int, port: int) -> dict[str, Any]:
    """Run the library's side of network benchmark ``key`` under its monkey patching.

    A server side never returns: its peer measures it and ends this process.
    """
    bench = _benchmark(key)
    lib = load_lib(lib_name)
    # Before the workload imports anything that uses sockets.
    lib.patch_all()
    func = ANCHORED.get((lib_name, key), bench.func)
    if bench.peer in SERVER_ROLES:
        func(lib, n, port)
    return _measure(lib, bench, n, "wall", lambda n: func(lib, n, port))


def _measure(lib: Lib, bench: Benchmark, n: int, clock: str, work: Callable[[int], float]) -> dict[str, Any]:
    if bench.higher_is_better:
        # A short run first, so imports done on first use and cold caches are
        # not part of the timed run.
        work(max(1, n // 10))
        gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = work(n)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if bench.higher_is_better:
        value = result / (cpu if clock == "cpu" else wall)
    else:
        value = result
    import greenlet

    return {
        "lib": lib.name,
        "bench": bench.key,
        "n": n,
        "value": value,
        "clock": clock,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "version": lib.version,
        "greenlet": greenlet.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str]) -> int:
    """Worker entry point: ``LIBRARY BENCHMARK N [cpu|wall] [PORT]``; prints one JSON line."""
    lib_name, key, n = argv[0], argv[1], int(argv[2])
    clock = argv[3] if len(argv) > 3 else "cpu"
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; choose from {', '.join(CLOCKS)}")
    try:
        if _benchmark(key).peer is None:
            result = run_one(lib_name, key, n, clock)
        else:
            result = run_networked(lib_name, key, n, int(argv[4]))
    except ImportError as exc:
        if exc.name == lib_name:
            print(f"{lib_name} is not installed: {exc}", file=sys.stderr)
            return EXIT_NOT_INSTALLED
        raise
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    # Leave at once: tearing down thousands of parked tasks (or a hub with
    # timers pending for a minute) is not part of any measurement.
    try:
        status = main(sys.argv[1:])
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
