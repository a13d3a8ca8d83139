"""gunicorn workers that serve each connection in a corun task: ``gunicorn -k corun.gunicorn.Worker app:app``.

Two workers, for two HTTP stacks:

- ``Worker`` answers with gunicorn's own HTTP code (its parser, its
  ``Response``, its access log and hooks), one task per connection, as
  gunicorn's gevent worker does.
- ``WSGIWorker`` answers with ``corun.wsgi.WSGIServer`` (llhttp's parser,
  needs the ``corun[wsgi]`` extra); gunicorn manages the processes.

Facts this module relies on:

- gunicorn imports the worker class in the master process and calls its
  ``setup()`` classmethod there, before ``--preload`` imports the
  application.  That is the one moment early enough for the application's
  ``import ssl`` or ``import requests`` to find cooperative modules, so
  ``setup()`` patches.  The master then runs patched; its loop (a select
  with a timeout, signal handlers that write to a pipe, ``fork``,
  ``waitpid(WNOHANG)``) is one task, for which the cooperative versions do
  what the originals do.
- A forked worker starts with a fresh hub (corun's at-fork hook) and
  inherits the listening sockets; its servers take them over as
  cooperative sockets.  Several workers accepting on one listener is fine:
  the kernel hands each connection to one of them.
- The master kills a worker whose heartbeat file was not touched for
  ``timeout`` seconds.  A task touches it, so a worker whose hub is held
  by a handler (CPU-bound work, a call patching missed) is replaced, as
  gunicorn intends.
- gunicorn's signals: SIGTERM asks for a graceful stop (stop accepting,
  let requests in flight finish within ``graceful_timeout``, then kill
  them); SIGQUIT and SIGINT ask for a quick one (exit now).  Reaching
  ``max_requests`` is a graceful stop, and the master starts a new worker.
- gunicorn sets ``alive = False`` to ask a worker to stop, from a signal
  handler or from request code; here that assignment also wakes the
  worker's main task, through the hub's thread-safe callback queue, which
  is safe to touch between any two bytecodes.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gunicorn import sock as _gunicorn_sock  # type: ignore[import-untyped]
from gunicorn.workers.base import Worker as _GunicornWorker  # type: ignore[import-untyped]
from gunicorn.workers.base_async import AsyncWorker as _AsyncWorker  # type: ignore[import-untyped]

from .event import Event
from .greenlet import Greenlet, GreenletExit, joinall, spawn
from .hub import get_hub, sleep
from .pool import Pool
from .server import StreamServer
from .timeout import Timeout

__all__ = ["WSGIWorker", "Worker"]

# gunicorn's own ceilings for its request limits (gunicorn.http.message).
_MAX_REQUEST_LINE = 8190
_UNLIMITED_REQUEST_LINE = 1 << 20
_MAX_HEADERS = 32768
_DEFAULT_FIELD_SIZE = 8190


def _patch() -> None:
    """Make the stdlib cooperative in this process (idempotent)."""
    from corun import monkey

    monkey.patch_all()


class _CorunWorker(_GunicornWorker):
    """What both workers share: patching, the heartbeat task, and stopping the gunicorn way."""

    _stop_requested: Event | None = None
    _alive = True
    _servers: tuple[StreamServer, ...] = ()
    sockets: list[Any]  # set by gunicorn's constructor

    @classmethod
    def setup(cls) -> None:
        """Patch; gunicorn calls this in the master, before ``--preload`` imports the application."""
        _patch()

    @property
    def alive(self) -> bool:
        """False once gunicorn asked this worker to stop (signal, ``max_requests``, parent gone)."""
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        self._alive = value
        if value:
            return
        # Stop accepting before anything else happens: the request that reached
        # max_requests must not be answered before the listener is closed, or the
        # client's next connection could still land here.  (Signal handlers run in
        # a task under corun, never in the hub, so closing is allowed here.)
        for server in self._servers:
            server.close()
        event = self._stop_requested
        if event is not None:
            # Possibly in a signal handler, between two bytecodes of any task: an
            # Event's waiters are woken from the hub's thread-safe queue instead.
            get_hub().run_callback_threadsafe(event.set)

    def init_process(self) -> None:
        """Set up the worker process after the fork, then run (gunicorn's entry point)."""
        _patch()  # already done by setup() when gunicorn loaded the class
        self._stop_requested = Event()  # made after the fork: it belongs to this process's hub
        if not self._alive:
            self._stop_requested.set()
        # gunicorn's listener objects hold the socket; the servers take it over.
        self.sockets = [getattr(listener, "sock", listener) for listener in self.sockets]
        super().init_process()

    def run(self) -> None:
        """Serve until asked to stop, then stop gracefully (gunicorn's main loop for a worker)."""
        heartbeat: Greenlet[None] = spawn(self._heartbeat)
        heartbeat.name = f"gunicorn heartbeat {os.getpid()}"
        try:
            self._servers = servers = tuple(self._start_servers())
            if not self.alive:
                for server in servers:
                    server.close()
            assert self._stop_requested is not None
            self._stop_requested.wait()
            self._stop_servers(servers)
        finally:
            heartbeat.kill()

    def _heartbeat(self) -> None:
        """Tell the master this worker is alive, for as long as the hub gets to run this task."""
        # self.timeout is already half the master's limit.
        interval = min(1.0, self.timeout) if self.timeout else 1.0
        while True:
            self.notify()
            if self.alive and self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
            sleep(interval)

    def _ssl_context(self) -> Any:
        return _gunicorn_sock.ssl_context(self.cfg) if self.cfg.is_ssl else None

    def _start_servers(self) -> list[StreamServer]:
        """One started server per listener, at most ``worker_connections`` connections each."""
        servers = []
        for listener in self.sockets:
            server = self._make_server(listener, Pool(self.worker_connections), self._ssl_context())
            if self.cfg.workers > 1:
                # Take one connection per wake-up so that the other workers get their share.
                server.max_accept = 1
            server.start()
            servers.append(server)
        return servers

    def _make_server(self, listener: Any, pool: Pool, ssl_context: Any) -> StreamServer:
        raise NotImplementedError

    def _stop_servers(self, servers: tuple[StreamServer, ...]) -> None:
        """Stop accepting now; give requests in flight ``graceful_timeout`` seconds, then kill them."""
        grace = float(self.cfg.graceful_timeout)
        started = time.monotonic()
        # In parallel: each server stops accepting at once, none waits for another.
        joinall([spawn(server.stop, grace) for server in servers])
        if time.monotonic() - started >= grace:
            self.log.warning("Worker graceful timeout (pid:%s)", self.pid)

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT/SIGINT: exit now; run in a task, as gunicorn's handler sleeps."""
        spawn(super().handle_quit, sig, frame)

    def handle_usr1(self, sig: int, frame: Any) -> None:
        """SIGUSR1: reopen the log files, in a task (it does file I/O)."""
        spawn(super().handle_usr1, sig, frame)


class _ListenerName:
    """What gunicorn's handler asks of its listener: its address, known even once the listener closed."""

    def __init__(self, sock: Any) -> None:
        self._name = sock.getsockname()

    def getsockname(self) -> Any:
        return self._name


class Worker(_CorunWorker, _AsyncWorker):
    """gunicorn's HTTP handling, one corun task per connection, ``worker_connections`` at most at once."""

    def _make_server(self, listener: Any, pool: Pool, ssl_context: Any) -> StreamServer:
        return StreamServer(listener, self._connection_handler(listener), spawn=pool, ssl_context=ssl_context)

    def _connection_handler(self, listener: Any) -> Any:
        name = _ListenerName(listener)

        def handle(client: Any, address: Any) -> None:
            self.handle(name, client, address)

        return handle

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection with gunicorn's parser and responses, in blocking mode (cooperative)."""
        client.setblocking(True)
        super().handle(listener, client, addr)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Answer one request; a request killed at the end of the graceful timeout drops its connection."""
        try:
            return bool(super().handle_request(listener_name, req, sock, addr))
        except GreenletExit:
            # Part of the response may be out: an error page now would corrupt it.
            raise StopIteration from None

    def timeout_ctx(self) -> Timeout:
        """How long a kept-alive connection may wait for its next request."""
        return Timeout(self.cfg.keepalive, False)


class WSGIWorker(_CorunWorker):
    """corun's own HTTP/1.1 server (``corun.wsgi``) in a gunicorn worker process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections = self.cfg.worker_connections

    def _make_server(self, listener: Any, pool: Pool, ssl_context: Any) -> StreamServer:
        from .wsgi import WSGIServer

        settings = _wsgi_settings(self.cfg, self.log)
        return WSGIServer(listener, self._application, spawn=pool, ssl_context=ssl_context, **settings)

    def _application(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The application, counting requests for ``max_requests`` and closing when the worker stops."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        environ["wsgi.multithread"] = True  # requests of one process run side by side
        if self.alive and self.cfg.keepalive:
            return self.wsgi(environ, start_response)

        def start_closing_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "connection"]
            headers.append(("Connection", "close"))
            return start_response(status, headers, exc_info)

        return self.wsgi(environ, start_closing_response)


def _wsgi_settings(cfg: Any, log: Any) -> dict[str, Any]:
    """``WSGISettings`` fields from a gunicorn config, with gunicorn's meaning of each limit.

    ``keepalive`` becomes the idle timeout between requests (0, no
    keep-alive: the wait for the first request uses the read timeout, and
    each response closes its connection); the request line and header
    limits keep gunicorn's defaults and ceilings.  gunicorn bounds each
    header field and the number of fields; corun bounds their total, set
    here to the product, the largest header block gunicorn accepts.
    """
    from .wsgi import WSGISettings

    line = cfg.limit_request_line
    if line < 0 or line >= _MAX_REQUEST_LINE:
        line = _MAX_REQUEST_LINE
    elif line == 0:
        line = _UNLIMITED_REQUEST_LINE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > _MAX_HEADERS:
        fields = _MAX_HEADERS
    field_size = cfg.limit_request_field_size
    if field_size <= 0:
        field_size = _DEFAULT_FIELD_SIZE
    keepalive = cfg.keepalive
    access = getattr(log, "access_log", None) if cfg.accesslog is not None else None
    error = getattr(log, "error_log", None)
    settings: dict[str, Any] = {
        "keepalive_timeout": float(keepalive) if keepalive > 0 else WSGISettings.timeout,
        "max_request_line": line,
        "max_header_count": fields,
        "max_header_size": fields * field_size,
        "access_log": access,
        "server_software": "",  # gunicorn sends none by default either
    }
    if error is not None:
        settings["error_log"] = error
    return settings
