"""Cooperative twin of :mod:`ssl`: TLS sockets whose handshakes and reads switch tasks.

Facts this module relies on:

- ``_ssl`` reads the *C-level* timeout of the socket it wraps on every call.
  The cooperative socket keeps that at 0.0 (the OS socket is non-blocking)
  and emulates ``settimeout`` above it, so every OpenSSL call returns at once
  with ``SSLWantReadError`` / ``SSLWantWriteError`` when it would block; this
  module waits for that readiness on the hub and retries.
- ``ssl.SSLSocket`` adds no state of its own to ``socket.socket`` beyond an
  instance ``__dict__``, and its methods reach the plain socket through
  ``super()``.  So ``SSLSocket(original SSLSocket, cooperative socket)`` is a
  valid class: ``isinstance(s, original ssl.SSLSocket)`` stays true, and
  every plain-socket call of the stdlib code (connect, accept, recv before
  wrapping) lands on the cooperative socket next in the MRO.  Only the
  methods that call OpenSSL directly are overridden here.
- The stdlib's ``SSLSocket._create`` and ``SSLContext``'s property setters
  name their class through the *module global* (``super(SSLSocket, self)``,
  ``super(SSLContext, SSLContext)``).  Once patching puts our subclasses in
  those globals, the stdlib code would find itself again and recurse, or
  reject the instance.  ``_create`` is therefore our own, and the setters are
  routed as explained on ``_CLevelDescriptors``.
"""

from __future__ import annotations

import _socket
import _ssl
import errno
import socket as _stdlib_socket
import ssl as _ssl_module
from collections.abc import Callable
from socket import SO_TYPE, SOCK_STREAM, SOL_SOCKET
from types import ModuleType
from typing import Any, TypeVar

from corun.hub import get_hub, wait_readable, wait_writable

from .socket import create_connection as _cooperative_create_connection
from .socket import socket as _cooperative_socket

__target__ = "ssl"

__all__ = ["SSLContext", "SSLSocket", "get_server_certificate"]
__implements__ = ["SSLContext", "SSLSocket", "get_server_certificate"]

T = TypeVar("T")

# Captured at import: the module globals are replaced by ours when patched.
_original_SSLContext = _ssl_module.SSLContext
_original_SSLSocket = _ssl_module.SSLSocket
_C_SSLContext = _ssl._SSLContext
_GLOBAL_DEFAULT_TIMEOUT: Any = _stdlib_socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]
_SSLError = _ssl_module.SSLError
_SSLWantReadError = _ssl_module.SSLWantReadError
_SSLWantWriteError = _ssl_module.SSLWantWriteError
_SSL_ERROR_EOF = _ssl_module.SSL_ERROR_EOF
_PROTOCOL_TLS_CLIENT = _ssl_module.PROTOCOL_TLS_CLIENT
_CERT_NONE = _ssl_module.CERT_NONE
_CERT_REQUIRED = _ssl_module.CERT_REQUIRED


# -- SSLContext ---------------------------------------------------------------

# The stdlib properties whose setters call
# ``super(SSLContext, SSLContext).<name>.__set__``: options, verify_mode,
# verify_flags, minimum_version, maximum_version, _msg_callback (found rather
# than listed, so a Python that adds one is covered).
_GLOBAL_NAMED_SETTERS = tuple(
    name
    for name, attr in vars(_original_SSLContext).items()
    if isinstance(attr, property) and attr.fset is not None and name in vars(_C_SSLContext)
)


class _CLevelDescriptors(_original_SSLContext):
    """The C descriptors of ``_ssl._SSLContext``, placed just after ``SSLContext`` in its MRO.

    When ``ssl.SSLContext`` is our class, a stdlib setter's
    ``super(SSLContext, SSLContext).options`` searches the MRO *after* our
    class.  Without this class it would find the stdlib property again and
    recurse forever, for our contexts and for contexts made with the original
    class before patching alike.  Here it finds the C descriptor, which is
    what the stdlib meant to reach.
    """


class SSLContext(_CLevelDescriptors):
    """An ``ssl.SSLContext`` whose ``wrap_socket`` returns cooperative sockets."""

    # Set below, once SSLSocket exists (as the stdlib does).
    sslsocket_class: Any = None


for _name in _GLOBAL_NAMED_SETTERS:
    setattr(_CLevelDescriptors, _name, vars(_C_SSLContext)[_name])
    # Our class shows the stdlib property again (enum getters, the
    # SSLv3-options rule, the message-callback wrapper): its setter then
    # reaches the C descriptor through _CLevelDescriptors whichever class the
    # module global names.
    setattr(SSLContext, _name, vars(_original_SSLContext)[_name])
del _name


# -- SSLSocket ----------------------------------------------------------------


# The two bases differ in a few signatures (accept's return type, the msg
# methods the TLS class refuses); the TLS class's come first, as intended.
class SSLSocket(_original_SSLSocket, _cooperative_socket):  # type: ignore[misc]
    """An ``ssl.SSLSocket`` whose OpenSSL calls wait cooperatively; made by ``SSLContext.wrap_socket``."""

    # What the stdlib class has without declaring it in the type stubs.
    _sslobj: Any  # the ``_ssl`` object; None before connect, once unwrapped, or closed
    _context: Any
    _session: Any
    _closed: bool
    _connected: bool
    do_handshake_on_connect: bool
    suppress_ragged_eofs: bool
    _checkClosed: Callable[[], None]
    _check_connected: Callable[[], None]

    @classmethod
    def _create(
        cls,
        sock: Any,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        context: Any = None,
        session: Any = None,
    ) -> SSLSocket:
        """Take over ``sock``'s fd as a TLS socket (the stdlib's checks, our base class)."""
        if sock.getsockopt(SOL_SOCKET, SO_TYPE) != SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side:
            if server_hostname:
                raise ValueError("server_hostname can only be specified in client mode")
            if session is not None:
                raise ValueError("session can only be specified in client mode")
        if context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")

        timeout = sock.gettimeout()
        kwargs = {"family": sock.family, "type": sock.type, "proto": sock.proto, "fileno": sock.fileno()}
        self = cls.__new__(cls, **kwargs)
        _cooperative_socket.__init__(self, **kwargs)
        sock.detach()
        # From here on this object owns the fd and must close it on failure.
        try:
            self._context = context
            self._session = session
            self._closed = False
            self._sslobj = None
            self.server_side = server_side
            self.server_hostname = context._encode_hostname(server_hostname)
            self.do_handshake_on_connect = do_handshake_on_connect
            self.suppress_ragged_eofs = suppress_ragged_eofs
            self.settimeout(timeout)
            self._connected = self._check_peer()
            if self._connected:
                self._sslobj = context._wrap_socket(
                    self, server_side, self.server_hostname, owner=self, session=session
                )
                if do_handshake_on_connect:
                    if timeout == 0.0:
                        raise ValueError(
                            "do_handshake_on_connect should not be specified for non-blocking sockets"
                        )
                    self.do_handshake()
        except BaseException:
            try:
                self.close()
            except OSError:
                pass
            raise
        return self

    def _check_peer(self) -> bool:
        """Whether the socket is connected; refuse plaintext already waiting on an unconnected one."""
        try:
            self.getpeername()
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise
        else:
            return True
        # A peer that sent data and went away before the handshake leaves a
        # socket that reports "not connected" with bytes still readable;
        # those bytes must not pass for data that came through TLS.  The OS
        # socket is non-blocking, so the C-level recv cannot block here.
        try:
            early = _socket.socket.recv(self, 1)
        except BlockingIOError:
            early = b""
        except OSError as e:
            if e.errno not in (errno.ENOTCONN, errno.EINVAL):
                raise
            early = b""
        if early:
            reason = "Closed before TLS handshake with data in recv buffer."
            err = _SSLError(errno.ENOTCONN, reason)
            err.reason = reason
            err.library = None  # type: ignore[assignment]  # as _ssl sets it
            raise err
        return False

    def _ssl_call(self, timeout: float | None, what: str | None, call: Callable[..., T], *args: Any) -> T:
        """Make one OpenSSL call, waiting for the readiness it asks for, with socket timeout semantics.

        The TLS counterpart of the socket's ``_try_then_wait``, which cannot
        serve here: OpenSSL says which readiness it needs only after each
        attempt (a handshake or a shutdown may want to read, then to write),
        and the stdlib reports its own errors (``SSLWantReadError`` /
        ``SSLWantWriteError`` at a timeout of 0.0, "The handshake operation
        timed out").  ``timeout`` is the socket's (None: wait as long as it
        takes); ``what`` names the operation in the ``TimeoutError``, None
        the direction waited for, as the stdlib does for a shutdown.
        """
        deadline = None
        while True:
            try:
                return call(*args)
            except _SSLWantReadError:
                if timeout == 0.0:
                    raise
                wait, direction = wait_readable, "read"
            except _SSLWantWriteError:
                if timeout == 0.0:
                    raise
                wait, direction = wait_writable, "write"
            if timeout is None:
                wait(self.fileno(), notifies_close=True)
                continue
            clock = get_hub().clock
            if deadline is None:
                deadline = clock() + timeout
            remaining = deadline - clock()
            try:
                if remaining > 0:
                    wait(self.fileno(), remaining, notifies_close=True)
                    continue
            except TimeoutError:
                if clock() < deadline:
                    raise  # not ours: thrown into the task by someone else
            raise TimeoutError(f"The {what or direction} operation timed out")

    def do_handshake(self, block: bool = False) -> None:
        """Run the TLS handshake, switching tasks while waiting for the peer."""
        self._check_connected()
        timeout = self.gettimeout()
        if timeout == 0.0 and block:
            timeout = None
        self._ssl_call(timeout, "handshake", self._sslobj.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read up to ``len`` decrypted bytes (into ``buffer`` if given); b"" or 0 at EOF."""
        self._checkClosed()
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            if buffer is not None:
                return self._ssl_call(self.gettimeout(), "read", sslobj.read, len, buffer)
            return self._ssl_call(self.gettimeout(), "read", sslobj.read, len)
        except _SSLError as e:
            if e.args[0] == _SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return 0 if buffer is not None else b""
            raise

    def write(self, data: Any) -> int:
        """Encrypt and send ``data``; return how many of its bytes were taken."""
        self._checkClosed()
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        return self._ssl_call(self.gettimeout(), "write", sslobj.write, data)

    def send(self, data: Any, flags: int = 0) -> int:
        """``write`` on a TLS socket, a plain ``send`` once unwrapped."""
        self._checkClosed()
        if self._sslobj is None:
            return _cooperative_socket.send(self, data, flags)
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to send() on {self.__class__}")
        return self.write(data)

    def unwrap(self) -> Any:
        """Shut TLS down (close_notify both ways) and return the plain socket."""
        sslobj = self._sslobj
        if not sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        plain = self._ssl_call(self.gettimeout(), None, sslobj.shutdown)
        self._sslobj = None
        return plain


SSLContext.sslsocket_class = SSLSocket


# -- module functions ---------------------------------------------------------


def get_server_certificate(
    addr: tuple[str, int],
    ssl_version: int = _PROTOCOL_TLS_CLIENT,
    ca_certs: str | None = None,
    timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
) -> str:
    """The PEM certificate of the TLS server at ``addr``, fetched cooperatively."""
    host = addr[0]
    context = SSLContext(ssl_version)
    context.check_hostname = False
    context.verify_mode = _CERT_REQUIRED if ca_certs is not None else _CERT_NONE
    if ca_certs is not None:
        context.load_verify_locations(ca_certs)
    with (
        _cooperative_create_connection(addr, timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(True)
    assert der is not None  # a TLS server always presents one
    return _ssl_module.DER_cert_to_PEM_cert(der)


if hasattr(_ssl_module, "wrap_socket"):  # removed in 3.12

    def wrap_socket(
        sock: Any,
        keyfile: str | None = None,
        certfile: str | None = None,
        server_side: bool = False,
        cert_reqs: _ssl_module.VerifyMode = _CERT_NONE,
        ssl_version: int = _ssl_module.PROTOCOL_TLS,
        ca_certs: str | None = None,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        ciphers: str | None = None,
    ) -> _ssl_module.SSLSocket:
        """The deprecated ``ssl.wrap_socket``, returning a cooperative socket."""
        import warnings

        warnings.warn(
            "ssl.wrap_socket() is deprecated, use SSLContext.wrap_socket()",
            category=DeprecationWarning,
            stacklevel=2,
        )
        if server_side and not certfile:
            raise ValueError("certfile must be specified for server-side operations")
        if keyfile and not certfile:
            raise ValueError("certfile must be specified")
        context = SSLContext(ssl_version)
        context.verify_mode = cert_reqs
        if ca_certs:
            context.load_verify_locations(ca_certs)
        if certfile:
            context.load_cert_chain(certfile, keyfile)
        if ciphers:
            context.set_ciphers(ciphers)
        return context.wrap_socket(
            sock=sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
        )

    __all__ += ["wrap_socket"]
    __implements__ += ["wrap_socket"]


def _after_patch(target: ModuleType) -> list[tuple[str, str, Any]]:
    """Make contexts created before patching wrap sockets cooperatively too (``monkey`` sets it).

    Their class is the original ``SSLContext``, whose ``wrap_socket`` builds a
    ``sslsocket_class``; the original ``SSLSocket._create`` would now name our
    class through the patched module global and fail, so it builds ours.
    """
    return [(target.__name__, "SSLContext.sslsocket_class", SSLSocket)]
