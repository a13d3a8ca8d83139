"""Servers that run one task per connection (``StreamServer``) or per datagram (``DatagramServer``).

Facts this module relies on:

- A listening socket is readable while connections wait in its backlog, and
  ``accept`` on its non-blocking fd takes them one at a time, raising
  ``BlockingIOError`` once none is left.  Taking several per wake-up saves a
  trip through the hub per connection; a cap on the batch keeps a flood of
  connections from starving the handlers already running.
- When the process (``EMFILE``) or the system (``ENFILE``) has no fd left,
  ``accept`` fails but the connection stays queued, so the listener stays
  readable: retrying at once would spin the CPU for as long as the fds stay
  used.  The loop pauses instead, doubling the pause up to a cap, and goes
  back to normal at the first connection it takes.
- Linux hands network errors already pending on a new connection to
  ``accept`` itself (``ECONNABORTED``, ``EPROTO``, ``ENETDOWN``...); they
  concern that one connection only, and the next ``accept`` may succeed.
- Closing the listener through the cooperative socket tells the hub first,
  which wakes the loop's wait with ``EBADF``; from then on the kernel refuses
  new connections.
- The core never imports ``corun.patches``; a server is built on top of the
  cooperative socket and ssl classes, so it lives above them.
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
import socket as _stdsocket
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from greenlet import getcurrent

# mypy checks corun.patches as the top-level package it is in the source tree.
from corun.patches.socket import socket as _cosocket  # type: ignore[import-not-found]

from .event import Event
from .greenlet import Greenlet, joinall, killall
from .hub import get_hub, sleep
from .lock import Lock
from .pool import Group, Pool

if TYPE_CHECKING:
    import ssl

__all__ = ["BaseServer", "DatagramServer", "StreamServer"]

logger = logging.getLogger("corun.server")

_Server = TypeVar("_Server", bound="BaseServer")

_c_accept = _socket.socket._accept  # type: ignore[attr-defined]
_c_recvfrom = _socket.socket.recvfrom

# accept/recvfrom errors that concern one connection or datagram only: take the next one.
_ONE_CONNECTION_ONLY = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "ECONNREFUSED",  # a UDP socket hears of an earlier sendto's ICMP "port unreachable"
        "ECONNRESET",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENETDOWN",
        "ENETUNREACH",
        "ENONET",
        "ENOPROTOOPT",
        "EOPNOTSUPP",
        "EPERM",  # a firewall rule refused the connection
        "EPROTO",
        "EINTR",
    )
    if hasattr(errno, name)
)

_UNIX = getattr(_stdsocket, "AF_UNIX", None)


class BaseServer:
    """What ``StreamServer`` and ``DatagramServer`` share: the listener, the loop, the handlers, stopping.

    Subclasses say which socket type they serve, how one item is taken from
    the socket and which function serves it.
    """

    socket_type: int = _stdsocket.SOCK_STREAM
    #: Items (connections, datagrams) taken per wake-up before letting other tasks run.
    max_accept = 100
    #: How long ``stop()`` waits for running handlers when given no timeout.
    stop_timeout = 1.0
    #: First and longest pause after the process or system ran out of fds.
    min_pause = 0.1
    max_pause = 1.0

    def __init__(
        self,
        listener: Any,
        handle: Callable[..., Any] | None = None,
        spawn: Group | int | str = "default",
    ) -> None:
        if handle is not None:
            if not callable(handle):
                raise TypeError(f"handle must be callable, not {type(handle).__name__}")
            self.handle = handle  # type: ignore[method-assign]
        elif type(self).handle is BaseServer.handle:
            raise TypeError(
                f"{type(self).__name__} needs a handle function, or a subclass that overrides handle()"
            )
        self._pool = _make_pool(spawn)
        self._socket: _stdsocket.socket | None = None
        self._address: Any = None
        self._unix_path: str | None = None  # set for a socket file this server created
        self._unix_ino: tuple[int, int] | None = None
        self._loop: Greenlet[None] | None = None
        # Each handler task, with the connection it serves (closed here should
        # the task be killed before it ever ran) or None.
        self._handler_tasks: dict[Greenlet[Any], Any] = {}
        self._stopped = Event()
        self._closed = False
        self._parse_listener(listener)

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self.started:
            state = "serving"
        else:
            state = "not started"
        return (
            f"<{type(self).__name__} {_describe(self.address)} {state} handlers={len(self._handler_tasks)}>"
        )

    def __enter__(self: _Server) -> _Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the listener -----------------------------------------------------------

    def _parse_listener(self, listener: Any) -> None:
        if isinstance(listener, _stdsocket.socket):
            self._adopt(listener)
        elif isinstance(listener, tuple):
            if len(listener) not in (2, 4):
                raise ValueError(f"a listener address is (host, port), not {listener!r}")
            host, port = listener[0], listener[1]
            if not isinstance(host, str):
                raise TypeError(f"the host of a listener address must be a str, not {type(host).__name__}")
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise ValueError(f"the port of a listener address must be an int in 0-65535, not {port!r}")
            self._address = listener
        elif isinstance(listener, (str, os.PathLike)):
            if _UNIX is None:
                raise ValueError("unix socket paths are not supported on this platform")
            self._address = os.fspath(listener)
        else:
            raise TypeError(
                "listener must be a (host, port) tuple, a unix socket path or a socket, "
                f"not {type(listener).__name__}"
            )

    def _adopt(self, sock: _stdsocket.socket) -> None:
        """Take over a socket the caller made; the server closes it when it stops."""
        if hasattr(sock, "do_handshake"):
            raise TypeError("give the server a plain socket, and TLS settings through ssl_context")
        if sock.fileno() < 0:
            raise ValueError(f"the listener {sock!r} is closed")
        if sock.type != self.socket_type:
            want = "SOCK_STREAM" if self.socket_type == _stdsocket.SOCK_STREAM else "SOCK_DGRAM"
            raise ValueError(f"{type(self).__name__} needs a {want} socket, not {sock!r}")
        if not isinstance(sock, _cosocket):
            # The fd moves to a cooperative socket: there is still exactly one
            # owner that closes it, and the caller's object is left detached.
            sock = _cosocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self._socket = sock
        self._address = sock.getsockname()

    def _open(self) -> _stdsocket.socket:
        """Bind (and for streams, listen on) the address given to the constructor."""
        address = self._address
        if isinstance(address, str):
            sock = _cosocket(_UNIX, self.socket_type)
            try:
                sock.bind(address)
                self._remember_unix_path(address)
            except BaseException:
                sock.close()
                raise
        else:
            if len(address) == 4:
                family, sockaddr = _stdsocket.AF_INET6, address
            else:
                from corun.patches.dns import getaddrinfo  # type: ignore[import-not-found]

                host = address[0] or None
                infos = getaddrinfo(host, address[1], 0, self.socket_type, 0, _stdsocket.AI_PASSIVE)
                family, sockaddr = infos[0][0], infos[0][4]
            sock = _cosocket(family, self.socket_type)
            try:
                if self.socket_type == _stdsocket.SOCK_STREAM and os.name == "posix":
                    # A restarted server can bind while old connections linger in TIME_WAIT.
                    sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
            except BaseException:
                sock.close()
                raise
        self._address = sock.getsockname()
        return sock

    def _remember_unix_path(self, path: str) -> None:
        if path and not path.startswith("\0"):  # not Linux's abstract namespace
            st = os.stat(path)
            self._unix_path, self._unix_ino = path, (st.st_dev, st.st_ino)

    def _remove_unix_path(self) -> None:
        # Only the file this server created: another server may have bound the path since.
        path, ino = self._unix_path, self._unix_ino
        self._unix_path = self._unix_ino = None
        if path is None:
            return
        try:
            st = os.stat(path)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == ino:
                os.unlink(path)
        except OSError:
            pass

    # -- what users read -----------------------------------------------------------

    @property
    def socket(self) -> _stdsocket.socket | None:
        """The listening (or receiving) socket; None before ``start()`` for an address listener."""
        return self._socket

    @property
    def address(self) -> Any:
        """The bound address once started (the real port for port 0), else the one given."""
        return self._address

    @property
    def server_host(self) -> str | None:
        """The host of an IP address (None for a unix socket)."""
        address = self._address
        return address[0] if isinstance(address, tuple) else None

    @property
    def server_port(self) -> int | None:
        """The port of an IP address (None for a unix socket)."""
        address = self._address
        return address[1] if isinstance(address, tuple) else None

    @property
    def started(self) -> bool:
        """True from ``start()`` until the server is stopped or closed."""
        return self._loop is not None and not self._closed

    @property
    def closed(self) -> bool:
        """True once ``stop()`` or ``close()`` was called."""
        return self._closed

    # -- running ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind if needed and start taking connections in a background task; return at once.

        Raises:
            RuntimeError: the server was closed (make a new one).
            OSError: binding or listening failed (the address is in use, say).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; make a new server")
        if self._loop is not None:
            return
        if self._socket is None:
            self._socket = self._open()
        self._prepare_socket(self._socket)
        loop: Greenlet[None] = Greenlet(self._run)
        loop.name = f"{type(self).__name__} {_describe(self._address)}"
        self._loop = loop
        loop.start()

    def _prepare_socket(self, sock: _stdsocket.socket) -> None:
        """Last set-up of the socket before the loop starts (streams listen)."""

    def serve_forever(self) -> None:
        """``start()``, then wait until the server is stopped or closed.

        An exception raised while waiting (Ctrl-C) stops the server first.
        """
        self.start()
        try:
            self._stopped.wait()
        finally:
            if not self._closed:
                self.stop()

    def close(self) -> None:
        """Stop taking connections and close the listener now; running handlers go on."""
        if not self._closed:
            self._closed = True
            self._stop_loop()
            self._close_socket()
        self._stopped.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking connections, let running handlers finish, then kill those still running.

        Args:
            timeout: how long to wait for the handlers (default ``stop_timeout``;
                0 kills them at once).  A handler that calls ``stop`` is not
                waited for.
        """
        if timeout is None:
            timeout = self.stop_timeout
        if not self._closed:
            self._closed = True
            self._stop_loop()
            self._stop_taking()
        current = getcurrent()
        running = [g for g in self._handler_tasks if g is not current]
        if running:
            if timeout > 0:
                joinall(running, timeout=timeout)
            late = [g for g in running if not g.dead]
            if late:
                logger.warning(
                    "%r: killing %d handler(s) still running after %.3g s", self, len(late), timeout
                )
                killall(late, block=True, timeout=1.0)  # a handler may ignore the kill
            for g in running:
                if g.dead:
                    conn = self._handler_tasks.pop(g, None)
                    if conn is not None:
                        conn.close()
        self._close_socket()
        self._stopped.set()

    def _stop_loop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.dead and loop is not getcurrent():
            # Without waiting: it is parked, and closing its socket ends it as
            # well; stop() must not let queued handlers start meanwhile.
            loop.kill(block=False)

    def _stop_taking(self) -> None:
        """Called by ``stop`` once the loop was told to end, before waiting for the handlers."""

    def _close_socket(self) -> None:
        sock = self._socket
        if sock is not None:
            sock.close()
        self._remove_unix_path()

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        """Take ready items in batches and give each to a handler task, until the socket is closed."""
        sock = self._socket
        assert sock is not None
        fd = sock.fileno()
        hub = get_hub()
        pool = self._pool
        take = self._take_one
        batch = self.max_accept
        pause = 0.0
        while True:
            if pool is not None and pool.full():
                pool.wait_available()
                continue
            taken = 0
            drained = False
            try:
                while taken < batch:
                    take(sock)
                    taken += 1
                    if pool is not None and pool.full():
                        break
            except BlockingIOError:
                drained = True
            except OSError as exc:
                if self._closed or sock.fileno() < 0:
                    return
                if exc.errno in _ONE_CONNECTION_ONLY:
                    continue
                pause = self._pause(exc, pause)
                continue
            if taken and pause:
                logger.warning("%r: accepting connections again", self)
                pause = 0.0
            if not drained:
                sleep(0)  # a full batch: let the handlers run, then come back for more
                continue
            try:
                hub.wait_readable(fd, notifies_close=True)
            except OSError:
                return  # the socket was closed under us

    def _pause(self, exc: OSError, pause: float) -> float:
        """Wait after an error that retrying at once would only repeat (no fds left); return the pause."""
        if not pause:
            # Once per episode: a full fd table would otherwise log on every retry.
            logger.error("%r: %s; pausing and retrying, for up to %g s at a time", self, exc, self.max_pause)
            pause = self.min_pause
        else:
            pause = min(pause * 2, self.max_pause)
        sleep(pause)
        return pause

    def _take_one(self, sock: _stdsocket.socket) -> None:
        """Take one item from the socket and start its handler; BlockingIOError when none is ready."""
        raise NotImplementedError

    def _spawn(self, func: Callable[..., Any], conn: Any, *args: Any) -> None:
        """Start ``func(*args)`` in a handler task that serves ``conn`` (a socket, or None)."""
        pool = self._pool
        if pool is None:
            g: Greenlet[Any] = Greenlet(func, *args)
            self._handler_tasks[g] = conn
            g.start()
        else:
            g = pool.greenlet_class(func, *args)
            self._handler_tasks[g] = conn
            pool.start(g)

    def handle(self, *args: Any) -> Any:
        """Serve one item; replaced by the ``handle`` function, or overridden by a subclass."""
        raise NotImplementedError


class StreamServer(BaseServer):
    """A TCP (or unix stream) server that calls ``handle(socket, address)`` in a new task per connection.

    Args:
        listener: ``(host, port)`` to bind to (port 0 picks a free port), a unix
            socket path, or a socket to take over (bound; listened on if it
            is not yet).  A plain ``socket.socket`` given here is detached and
            its fd moves to a cooperative socket, which the server closes when
            it stops.
        handle: ``handle(socket, address)``; the connection is closed when it
            returns or fails.  A subclass may override ``handle`` instead.
        spawn: ``"default"`` (a task per connection, no limit), an int ``n``
            (at most ``n`` handlers at once: accepting pauses while ``n`` run),
            or a ``corun.pool.Pool``/``Group`` to run the handlers in.
        backlog: the listen backlog for a listener this server creates or
            starts listening on (default ``socket.SOMAXCONN``).
        ssl_context: an ``ssl.SSLContext`` to serve TLS: each connection's
            handshake runs in its own handler task, and a failed or timed-out
            handshake (``handshake_timeout``) is logged and drops that
            connection only.
    """

    socket_type = _stdsocket.SOCK_STREAM
    #: With ``ssl_context``: how long a client may take over its TLS handshake
    #: before its connection is dropped (None: as long as it likes).  A
    #: client that connects and says nothing would otherwise hold a place in
    #: the pool for as long as it stays connected.
    handshake_timeout: float | None = 60.0

    def __init__(
        self,
        listener: Any,
        handle: Callable[[_stdsocket.socket, Any], Any] | None = None,
        spawn: Group | int | str = "default",
        backlog: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if backlog is not None and (not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 0):
            raise ValueError(f"backlog must be a non-negative int, not {backlog!r}")
        if ssl_context is not None:
            import ssl

            if not isinstance(ssl_context, ssl.SSLContext):
                raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")
        self.backlog = backlog
        self.ssl_context = ssl_context
        super().__init__(listener, handle, spawn)

    def _prepare_socket(self, sock: _stdsocket.socket) -> None:
        listening = sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ACCEPTCONN)
        if not listening:
            sock.listen(_stdsocket.SOMAXCONN if self.backlog is None else self.backlog)

    def _stop_taking(self) -> None:
        # Refuse new connections while the running handlers finish.
        self._close_socket()

    def _take_one(self, sock: _stdsocket.socket) -> None:
        fd, address = _c_accept(sock)
        conn = _cosocket(sock.family, sock.type, sock.proto, fileno=fd)
        self._spawn(self._serve_connection, conn, conn, address)

    def _serve_connection(self, sock: _stdsocket.socket, address: Any) -> None:
        conn = sock
        try:
            if self.ssl_context is not None:
                tls = self._handshake(sock, address)
                if tls is None:
                    return
                conn = tls
            self.handle(conn, address)
        except Exception:
            logger.exception("%r: the handler for %s failed", self, _describe(address))
        finally:
            self._handler_tasks.pop(getcurrent(), None)
            conn.close()
            if conn is not sock:
                sock.close()  # a no-op once the TLS socket took the fd

    def _handshake(self, sock: _stdsocket.socket, address: Any) -> _stdsocket.socket | None:
        """The connection wrapped in server-side TLS, handshake done; None if it failed (logged)."""
        from corun.patches.ssl import SSLSocket  # type: ignore[import-not-found]

        tls = None
        try:
            tls = SSLSocket._create(
                sock, server_side=True, do_handshake_on_connect=False, context=self.ssl_context
            )
            limit = self.handshake_timeout
            if limit is None:
                tls.do_handshake()
            else:
                timeout = tls.gettimeout()
                tls.settimeout(limit)
                tls.do_handshake()
                tls.settimeout(timeout)
        except (OSError, ValueError) as exc:
            logger.warning("%r: TLS handshake with %s failed: %s", self, _describe(address), exc)
            if tls is not None:
                tls.close()
            return None
        return tls


class DatagramServer(BaseServer):
    """A UDP (or unix datagram) server that calls ``handle(data, address)`` in a new task per datagram.

    ``listener`` and ``spawn`` are as for ``StreamServer``; ``sendto`` answers.
    """

    socket_type = _stdsocket.SOCK_DGRAM
    #: The largest datagram received whole; longer ones are cut to this size.
    max_datagram_size = 65535

    def __init__(
        self,
        listener: Any,
        handle: Callable[[bytes, Any], Any] | None = None,
        spawn: Group | int | str = "default",
    ) -> None:
        super().__init__(listener, handle, spawn)
        self._send_lock = Lock()

    def _take_one(self, sock: _stdsocket.socket) -> None:
        data, address = _c_recvfrom(sock, self.max_datagram_size)
        self._spawn(self._serve_datagram, None, data, address)

    def _serve_datagram(self, data: bytes, address: Any) -> None:
        try:
            self.handle(data, address)
        except Exception:
            logger.exception("%r: the handler for a datagram from %s failed", self, _describe(address))
        finally:
            self._handler_tasks.pop(getcurrent(), None)

    def sendto(self, data: bytes, address: Any) -> int:
        """Send ``data`` to ``address`` from the server's socket; return the bytes sent.

        Raises:
            RuntimeError: the server has no socket yet (call ``start()`` first).
        """
        sock = self._socket
        if sock is None:
            raise RuntimeError(f"{self!r} has no socket yet; call start() first")
        # Handlers share the socket: only one task at a time may wait for it to be writable.
        with self._send_lock:
            return sock.sendto(data, address)


def _make_pool(spawn: Any) -> Group | None:
    """The group the handlers run in (None: plain tasks, no limit)."""
    if isinstance(spawn, Group):
        return spawn
    if isinstance(spawn, int) and not isinstance(spawn, bool):
        if spawn < 1:
            raise ValueError(f"spawn as a pool size must be at least 1, not {spawn}")
        return Pool(spawn)
    if spawn == "default":
        return None
    kind = repr(spawn) if isinstance(spawn, str) else type(spawn).__name__
    raise TypeError(f"spawn must be 'default', a pool size (int) or a corun.pool.Pool, not {kind}")


def _describe(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        return f"[{host}]:{address[1]}" if ":" in str(host) else f"{host}:{address[1]}"
    return repr(address) if address else "an unnamed unix socket"
