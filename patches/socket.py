"""Cooperative twin of :mod:`socket`: sockets whose blocking calls switch tasks.

Facts this module relies on:

- Every Python-level socket is a ``_socket.socket`` underneath, and the C
  methods obey the C-level timeout: at 0.0 they make one non-blocking system
  call and raise ``BlockingIOError`` when it would block.  The cooperative
  socket keeps the C-level timeout at 0.0 for its whole life (so the OS
  socket is non-blocking) and keeps the timeout the user set in
  ``_user_timeout``; ``_try_then_wait`` turns the two into the stdlib's
  semantics.  ``ssl`` relies on the same fact: ``_ssl`` reads the C-level
  timeout and returns "want read/write" instead of blocking.
- The C methods retry ``EINTR`` themselves (PEP 475); only ``connect`` on a
  non-blocking socket lets ``EINPROGRESS``/``EINTR`` out, and the connection
  then completes in the background.  Whether it has completed is read from
  ``SO_ERROR`` and a second ``connect`` (``EALREADY`` while in progress,
  0 or ``EISCONN`` once done), because a readiness wake-up can be spurious.
- A host name in an address is looked up by the C ``connect``/``sendto``
  itself, blocking the thread; so names are looked up first through the
  socket module's ``getaddrinfo`` (the cooperative one once DNS is patched).
- The stdlib's ``close``, ``makefile``/``SocketIO``, ``dup`` and
  ``_sendfile_use_send`` are written over the public methods and
  ``_real_close``, so overriding those makes them cooperative as well.
- O_NONBLOCK belongs to the open file, which every fd duplicated from it
  shares (``os.dup``, ``fromfd``, a forked child's copy), not to the fd.
  The stdlib leaves a socket blocking while its timeout is None, and code
  that reads its fd directly (``os.read(sock.fileno(), n)``, an fd given
  away by ``detach()``) counts on that.  So ``detach`` gives the fd back in
  the mode the stdlib's would have, and the fds of live sockets that corun
  made non-blocking behind a timeout of None are listed
  (``corun._fdmodes``), for ``os.read``/``os.write`` to wait on
  rather than raise ``BlockingIOError``.  A file shared with a live socket
  cannot go back to blocking at close: another process may be using it
  through corun.
"""

from __future__ import annotations

import _socket as _csocket
import io
import os
import socket as _stdsocket
from collections.abc import Callable
from errno import EINPROGRESS, EINTR, EISCONN, EWOULDBLOCK
from typing import TYPE_CHECKING, Any, TypeVar

from corun._exceptiongroup import exception_group
from corun._fdmodes import set_blocking_for_its_owner
from corun.hub import READ, WRITE, get_hub, notify_closing

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__target__ = "socket"

__all__ = ["close", "create_connection", "create_server", "fromfd", "socket", "socketpair"]
# The stdlib's create_connection, create_server, socketpair and fromfd build
# their sockets with the module-global ``socket`` and resolve with the
# module-global ``getaddrinfo``, looked up at call time: once ``socket`` is
# replaced they return cooperative sockets, with each Python version's own
# behaviour, and so does a copy imported before patching.  They stay the
# stdlib's; the ones here serve code that uses this module without patching.
__implements__ = ["close", "socket"]

T = TypeVar("T")

AF_INET = _csocket.AF_INET
AF_INET6 = _csocket.AF_INET6
SOCK_STREAM = _csocket.SOCK_STREAM
SOL_SOCKET = _csocket.SOL_SOCKET
SO_ERROR = _csocket.SO_ERROR

# The C methods, captured once: the cooperative methods call them directly.
_CSocket = _csocket.socket
_c_settimeout = _CSocket.settimeout
_c_gettimeout = _CSocket.gettimeout
_c_accept = _CSocket._accept  # type: ignore[attr-defined]
_c_connect = _CSocket.connect
_c_connect_ex = _CSocket.connect_ex
_c_getsockopt = _CSocket.getsockopt
_c_recv = _CSocket.recv
_c_recv_into = _CSocket.recv_into
_c_recvfrom = _CSocket.recvfrom
_c_recvfrom_into = _CSocket.recvfrom_into
_c_recvmsg = _CSocket.recvmsg
_c_recvmsg_into = _CSocket.recvmsg_into
_c_send = _CSocket.send
_c_sendto = _CSocket.sendto
_c_sendmsg = _CSocket.sendmsg
_c_type = _CSocket.type.__get__
# Buffers whose len() is never more than their size in bytes (recv_into's short reads).
_SIZED_BUFFERS = (bytearray, memoryview)

# The stdlib's own, captured before patching replaces them on the module.
_original_create_server = _stdsocket.create_server
_GLOBAL_DEFAULT_TIMEOUT: Any = _stdsocket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]

# connect() errors that mean "started, finishing in the background".
_CONNECT_PENDING = frozenset({EINPROGRESS, EINTR, EWOULDBLOCK})
_MSG_DONTWAIT = getattr(_csocket, "MSG_DONTWAIT", 0)


def _note_timeout(sock: socket) -> None:
    """Keep ``sock``'s entry in the owners' registry in step with its timeout."""
    fd = sock.fileno()
    if fd >= 0:
        set_blocking_for_its_owner(fd, sock._user_timeout is None)


def _let_go(fd: int) -> None:
    """``fd`` is about to stop being a cooperative socket's: wake its waiters, forget its entry."""
    if fd >= 0:
        notify_closing(fd)
        set_blocking_for_its_owner(fd, False)


class socket(_stdsocket.socket):
    """A ``socket.socket`` whose blocking calls park the calling task instead of the thread.

    A subclass of the stdlib class, so ``isinstance`` checks hold.  The OS
    socket is always non-blocking; ``settimeout``/``gettimeout``/
    ``setblocking``/``getblocking`` behave as the stdlib documents them.
    """

    __slots__ = ("_read_drained", "_stream", "_user_timeout")

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        super().__init__(family, type, proto, fileno)
        # The C constructor already chose the stdlib's timeout (the default
        # timeout, or 0.0 for SOCK_NONBLOCK): that is what the user sees.
        self._user_timeout: float | None = _c_gettimeout(self)
        _c_settimeout(self, 0.0)
        _note_timeout(self)
        self._stream: bool = _c_type(self) == SOCK_STREAM
        # The last recv or recv_into on this stream emptied the kernel's buffer (see recv).
        self._read_drained = False

    # -- timeouts, emulated above a non-blocking OS socket -------------------

    def settimeout(self, value: float | None) -> None:
        """Set the timeout of blocking calls: None waits forever, 0.0 never waits."""
        # The C method checks and normalises the value exactly as the stdlib
        # does; then the OS socket goes back to non-blocking.
        try:
            _c_settimeout(self, value)
        except OSError:
            # A closed fd: the stdlib keeps the new value all the same.
            self._user_timeout = _c_gettimeout(self)
            raise
        self._user_timeout = _c_gettimeout(self)
        _c_settimeout(self, 0.0)
        _note_timeout(self)

    def gettimeout(self) -> float | None:
        """The timeout set by the user (None: blocking calls wait forever)."""
        return self._user_timeout

    def setblocking(self, flag: bool) -> None:
        """``settimeout(None)`` if ``flag`` is true, else ``settimeout(0.0)``."""
        socket.settimeout(self, None if flag else 0.0)

    def getblocking(self) -> bool:
        """False only when the timeout is 0.0, as in the stdlib."""
        return self._user_timeout != 0.0

    # The C attribute reads the OS socket's timeout, always 0.0 here.
    @property
    def timeout(self) -> float | None:
        """The timeout set by the user, as ``gettimeout()`` (read-only, as the C attribute)."""
        return self._user_timeout

    @timeout.setter
    def timeout(self, value: Any) -> None:
        raise AttributeError("attribute 'timeout' of '_socket.socket' objects is not writable")

    @timeout.deleter
    def timeout(self) -> None:
        raise AttributeError("attribute 'timeout' of '_socket.socket' objects is not writable")

    # -- the one try-then-wait helper ------------------------------------------

    def _try_then_wait(
        self,
        event: int,
        func: Callable[..., T],
        *args: Any,
        deadline: float | None = None,
        msg_flags: int = 0,
    ) -> T:
        """Call ``func(*args)``, a non-blocking call on this socket; while it would block, wait and retry.

        The stdlib's timeout semantics live here and in ``_wait_then_retry``:
        with a timeout of 0.0 the ``BlockingIOError`` reaches the caller; with
        None the task waits as long as it takes; with ``t`` it raises
        ``TimeoutError("timed out")`` ``t`` seconds after it first had to
        wait, or at ``deadline`` (on the hub's clock) when one call of the
        caller spans several system calls.  The busiest methods (``recv``,
        ``send``, ``sendall``) make their first call themselves, as this does.

        Args:
            event: ``corun.hub.READ`` or ``WRITE``: the readiness to wait for.
            func: the call to make (and make again after each wake-up).
            *args: its arguments.
            deadline: when the caller's whole operation must be done.
            msg_flags: the call's ``MSG_*`` flags: with ``MSG_DONTWAIT`` a
                blocking socket makes its one call and reports the outcome,
                as the stdlib's does (a socket with a timeout still waits).

        Raises:
            TimeoutError: the timeout passed first.
            OSError: (EBADF) the socket was closed by another task meanwhile.
        """
        try:
            return func(*args)
        except (BlockingIOError, InterruptedError):
            if not self._may_wait(msg_flags):
                raise
        return self._wait_then_retry(event, func, *args, deadline=deadline)

    def _may_wait(self, msg_flags: int) -> bool:
        """Whether a call that would block waits (else its ``BlockingIOError`` reaches the caller)."""
        timeout = self._user_timeout
        return not (timeout == 0.0 or (timeout is None and msg_flags & _MSG_DONTWAIT))

    def _wait_then_retry(
        self, event: int, func: Callable[..., T], *args: Any, deadline: float | None = None
    ) -> T:
        """Wait for ``event`` and call ``func(*args)`` again until it goes through."""
        hub = get_hub()
        if deadline is None and self._user_timeout is not None:
            deadline = hub.clock() + self._user_timeout
        # wait_readable/wait_writable's own step, called without their keyword argument.
        wait = hub._wait_fd
        fd = self.fileno()
        while True:
            if deadline is None:
                wait(fd, event, None, True)
            else:
                remaining = deadline - hub.clock()
                if remaining <= 0:
                    raise TimeoutError("timed out")
                try:
                    wait(fd, event, remaining, True)
                except TimeoutError:
                    if hub.clock() < deadline:
                        raise  # not ours: thrown into the task by someone else
                    raise TimeoutError("timed out") from None
            # Wake-ups can be spurious: only the call itself can tell.
            try:
                return func(*args)
            except (BlockingIOError, InterruptedError):
                pass

    def _deadline(self) -> float | None:
        """When an operation of several system calls starting now must end (None: no limit)."""
        timeout = self._user_timeout
        return get_hub().clock() + timeout if timeout else None

    # -- connecting ---------------------------------------------------------

    def _resolve(self, address: Any) -> Any:
        """``address`` with its host name replaced by an IP address (literal addresses pass as they are).

        The lookup goes through the socket module's ``getaddrinfo``, which
        switches tasks once DNS is patched; C would look the name up itself,
        blocking the thread.
        """
        if self.family not in (AF_INET, AF_INET6) or not isinstance(address, tuple) or len(address) < 2:
            return address
        host, port = address[0], address[1]
        if not isinstance(host, str) or not isinstance(port, int) or host in ("", "<broadcast>"):
            return address  # C handles these without a lookup, or rejects them
        try:
            _csocket.inet_pton(self.family, host)
            return address
        except (OSError, ValueError):
            pass
        # As the C code does: the first address of the socket's family; the
        # port and any IPv6 flow info and scope stay the caller's.
        infos = _stdsocket.getaddrinfo(host, None, self.family)
        return (infos[0][4][0], port, *address[2:])

    def connect(self, address: Any) -> None:
        """Connect to ``address``, waiting cooperatively for the connection to complete."""
        self._connect(self._resolve(address))

    def connect_ex(self, address: Any) -> int:
        """Like ``connect``, but return the error number instead of raising (0: connected)."""
        address = self._resolve(address)  # lookup errors are raised, as by the stdlib
        try:
            self._connect(address)
        except OSError as exc:
            if exc.errno is not None:
                return int(exc.errno)
            if isinstance(exc, TimeoutError):
                return EWOULDBLOCK  # what the stdlib returns when its timeout passes
            raise
        return 0

    def _connect(self, address: Any) -> None:
        # Called by both connect methods directly: a subclass's connect (an
        # SSLSocket's handshakes) must not run inside connect_ex.
        try:
            _c_connect(self, address)
            return
        except (BlockingIOError, InterruptedError) as exc:
            if self._user_timeout == 0.0 or exc.errno not in _CONNECT_PENDING:
                raise
        self._try_then_wait(WRITE, self._connect_outcome, address)

    def _connect_outcome(self, address: Any) -> None:
        """Return once a connect in progress succeeded; raise its error, or BlockingIOError while pending."""
        err = _c_getsockopt(self, SOL_SOCKET, SO_ERROR)
        if not err:
            err = _c_connect_ex(self, address)
            if err in (0, EISCONN):
                return
        # OSError picks the subclass: EALREADY/EINPROGRESS/EAGAIN give
        # BlockingIOError (wait again), ECONNREFUSED ConnectionRefusedError...
        raise OSError(err, os.strerror(err))

    def accept(self) -> tuple[socket, Any]:
        """Wait for a connection; return a new cooperative socket for it and the peer's address."""
        fd, address = self._try_then_wait(READ, _c_accept, self)
        # Its timeout comes from the default timeout, as with the stdlib.
        return socket(self.family, self.type, self.proto, fileno=fd), address

    # -- receiving ----------------------------------------------------------

    # recv, recv_into, send and sendall make their first call themselves, as
    # _try_then_wait would: they are most of a server's calls, and most need no wait.
    #
    # A read on a stream that returned less than it asked for emptied the kernel's
    # buffer, and in the usual exchange of requests and answers the next read comes
    # before more data: it would fail with EAGAIN, and raising that BlockingIOError
    # (strerror, the locale's decoding, the exception) costs more in C than the
    # rest of the wait.  So a blocking read after such a read waits for data first;
    # the poll is level-triggered, so data that came meanwhile ends the wait at once.

    def _wait_first(self, flags: int) -> bool:
        """Whether a read whose last read emptied the buffer waits before its call."""
        return not flags and self._user_timeout != 0.0 and self.fileno() >= 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Receive up to ``bufsize`` bytes (b"" once the peer has shut down writing)."""
        if self._read_drained and self._wait_first(flags):
            data = self._wait_then_retry(READ, _c_recv, self, bufsize, flags)
        else:
            try:
                data = _c_recv(self, bufsize, flags)
            except (BlockingIOError, InterruptedError):
                if not self._may_wait(flags):
                    raise
                data = self._wait_then_retry(READ, _c_recv, self, bufsize, flags)
        self._read_drained = self._stream and 0 < len(data) < bufsize
        return data

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer``; return how many bytes were written to it."""
        if self._read_drained and self._wait_first(flags):
            n = self._wait_then_retry(READ, _c_recv_into, self, buffer, nbytes, flags)
        else:
            try:
                n = _c_recv_into(self, buffer, nbytes, flags)
            except (BlockingIOError, InterruptedError):
                if not self._may_wait(flags):
                    raise
                n = self._wait_then_retry(READ, _c_recv_into, self, buffer, nbytes, flags)
        # The size asked for: nbytes, else the buffer's (unknown for other buffer types: never drained).
        asked = nbytes or (len(buffer) if isinstance(buffer, _SIZED_BUFFERS) else 0)
        self._read_drained = self._stream and 0 < n < asked
        return n

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        """Receive up to ``bufsize`` bytes and the sender's address."""
        return self._try_then_wait(READ, _c_recvfrom, self, bufsize, flags, msg_flags=flags)

    def recvfrom_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Receive into ``buffer``; return the byte count and the sender's address."""
        return self._try_then_wait(READ, _c_recvfrom_into, self, buffer, nbytes, flags, msg_flags=flags)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, list[Any], int, Any]:
        """Receive data and ancillary data (see ``socket.socket.recvmsg``)."""
        return self._try_then_wait(READ, _c_recvmsg, self, bufsize, ancbufsize, flags, msg_flags=flags)

    def recvmsg_into(
        self, buffers: Any, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[int, list[Any], int, Any]:
        """Receive into ``buffers`` and ancillary data (see ``socket.socket.recvmsg_into``)."""
        buffers = _reusable(buffers)
        return self._try_then_wait(READ, _c_recvmsg_into, self, buffers, ancbufsize, flags, msg_flags=flags)

    # -- sending ------------------------------------------------------------

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        """Send some of ``data``; return how many bytes were sent."""
        try:
            return _c_send(self, data, flags)
        except (BlockingIOError, InterruptedError):
            if not self._may_wait(flags):
                raise
        return self._wait_then_retry(WRITE, _c_send, self, data, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        """Send all of ``data``; a timeout limits the whole call, as in the stdlib."""
        deadline = self._deadline() if self._user_timeout else None
        sent = 0
        if type(data) is bytes:
            # Most sends take the whole of a bytes object at once: no view and no slice then.
            try:
                sent = _c_send(self, data, flags)
            except (BlockingIOError, InterruptedError):
                if not self._may_wait(flags):
                    raise
                sent = self._wait_then_retry(WRITE, _c_send, self, data, flags, deadline=deadline)
            if sent == len(data):
                return
        with memoryview(data) as view, view.cast("B") as octets:
            total = len(octets)
            while sent < total:
                sent += self._try_then_wait(
                    WRITE, _c_send, self, octets[sent:], flags, deadline=deadline, msg_flags=flags
                )

    def sendto(self, data: ReadableBuffer, *flags_and_address: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``; return the bytes sent."""
        if not flags_and_address:
            raise TypeError("sendto() takes 2 or 3 arguments (1 given)")
        *flags, address = flags_and_address
        msg_flags = flags[0] if len(flags) == 1 and isinstance(flags[0], int) else 0
        return self._try_then_wait(
            WRITE, _c_sendto, self, data, *flags, self._resolve(address), msg_flags=msg_flags
        )

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        """Send data and ancillary data (see ``socket.socket.sendmsg``); return the bytes sent."""
        if address is not None:
            address = self._resolve(address)
        buffers, ancdata = _reusable(buffers), _reusable(ancdata)
        return self._try_then_wait(WRITE, _c_sendmsg, self, buffers, ancdata, flags, address, msg_flags=flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file's bytes: ``os.sendfile`` for a regular file, else reads and ``send``."""
        self._check_sendfile_params(file, offset, count)  # type: ignore[attr-defined]
        try:
            fileno = file.fileno()
            size = os.fstat(fileno).st_size
        except (AttributeError, io.UnsupportedOperation, OSError):
            return self._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined]
        if not size:
            return 0
        if self._user_timeout == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        # Capped so that one call never asks for more than 1 GiB.
        blocksize = min(count or size, 2**30)
        sockno = self.fileno()
        total = 0
        try:
            while not count or total < count:
                want = min(blocksize, count - total) if count else blocksize
                try:
                    sent = self._try_then_wait(WRITE, os.sendfile, sockno, fileno, offset, want)
                except TimeoutError:
                    raise
                except OSError:
                    if total:
                        raise
                    # As the stdlib does: a file os.sendfile cannot take (or an
                    # fd it refuses) is sent the slow way instead.
                    return self._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined]
                if not sent:
                    break  # end of file
                offset += sent
                total += sent
            return total
        finally:
            if total and hasattr(file, "seek"):
                file.seek(offset)

    # -- closing ------------------------------------------------------------

    def _real_close(self, _ss: Any = _CSocket) -> None:
        # Wake the tasks waiting on this fd (with EBADF) and unregister it
        # while the number still names this socket; once closed, the number
        # can be reused by the next file opened.
        _let_go(self.fileno())
        super()._real_close(_ss)  # type: ignore[misc]

    # Every way this object gives up its fd unregisters it first, which is
    # what lets its waits pass notifies_close=True (no epoll_ctl per wait).

    def detach(self) -> int:
        """Give up the fd without closing it, unregistered from the hub and in the stdlib's blocking mode.

        With a timeout of None the fd is blocking again, as the stdlib's
        socket would leave it: whatever takes it over (``multiprocessing``'s
        connections read it with ``os.read``) expects blocking calls.
        """
        fd = self.fileno()
        _let_go(fd)
        if fd >= 0 and self._user_timeout is None:
            _c_settimeout(self, None)
        return super().detach()

    def __del__(self) -> None:
        # A socket collected unclosed is closed by the C finalizer, which
        # knows nothing of the hub.
        _let_go(self.fileno())
        super().__del__()  # type: ignore[misc]  # _socket.socket has one; typeshed does not say so


def _reusable(items: Any) -> Any:
    """``items`` as a list if it is a one-shot iterable, so that a retried call sees it all again.

    The C method consumes a generator of buffers even when the call then
    fails with ``BlockingIOError``; the retry would find it empty.
    """
    if isinstance(items, (list, tuple)):
        return items
    try:
        return list(items)
    except TypeError:
        return items  # not iterable: the C method rejects it with its own message


def socketpair(family: int | None = None, type: int = SOCK_STREAM, proto: int = 0) -> tuple[socket, socket]:
    """A pair of connected cooperative sockets (AF_UNIX where the platform has it)."""
    if family is None:
        family = getattr(_csocket, "AF_UNIX", AF_INET)
    a, b = _csocket.socketpair(family, type, proto)
    return socket(family, type, proto, a.detach()), socket(family, type, proto, b.detach())


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """A cooperative socket on a duplicate of the file descriptor ``fd``."""
    return socket(family, type, proto, _csocket.dup(fd))


def close(fd: int) -> None:
    """Close a socket file descriptor, first waking the tasks waiting on it."""
    notify_closing(fd)
    _csocket.close(fd)


def create_connection(
    address: tuple[Any, Any],
    timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
    source_address: Any = None,
    *,
    all_errors: bool = False,
) -> socket:
    """Connect a cooperative TCP socket to ``(host, port)``, trying each address the host resolves to.

    Args:
        address: ``(host, port)``.
        timeout: set on the socket before connecting (default: the default timeout).
        source_address: ``(host, port)`` to bind to first, if given.
        all_errors: when every address fails, raise an ``ExceptionGroup`` of
            all the errors instead of the last one.

    Raises:
        OSError: no address could be connected to (the last error).
    """
    host, port = address
    failures: list[OSError] = []
    # Looked up on the module at call time: the cooperative resolver once DNS is patched.
    for family, kind, proto, _canonname, sockaddr in _stdsocket.getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = socket(family, kind, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            if sock is not None:
                sock.close()
            failures.append(exc)
            continue
        return sock
    if not failures:
        raise OSError("getaddrinfo returns an empty list")
    try:
        if all_errors:
            raise exception_group("create_connection failed", failures)
        raise failures[-1]
    finally:
        # Each traceback refers to this frame, which refers to the list.
        failures.clear()


def create_server(
    address: tuple[Any, Any],
    *,
    family: int = AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> socket:
    """A cooperative TCP socket bound to ``address`` and listening (see ``socket.create_server``)."""
    sock = _original_create_server(
        address, family=family, backlog=backlog, reuse_port=reuse_port, dualstack_ipv6=dualstack_ipv6
    )
    if isinstance(sock, socket):
        return sock  # once patched, the stdlib's function already builds ours
    timeout = sock.gettimeout()
    cooperative = socket(sock.family, sock.type, sock.proto, sock.detach())
    cooperative.settimeout(timeout)
    return cooperative
