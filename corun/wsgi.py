"""An HTTP/1.1 WSGI server: one task per connection, requests parsed by ``httptools`` (llhttp).

Facts this module relies on:

- llhttp is strict by default: a request with both ``Content-Length`` and
  ``Transfer-Encoding``, two ``Content-Length`` headers, a bad chunk size, a
  ``Transfer-Encoding`` that does not end in ``chunked``, obsolete line
  folding or a bare LF makes ``feed_data`` raise.  Such a request is answered
  with 400 and the connection is closed: after a framing error nothing later
  on the connection can be trusted, so nothing is guessed.
- ``httptools`` pushes events (URL pieces, headers, body pieces, the end of
  a message) while WSGI pulls the body through ``wsgi.input``.  The two meet
  here: the connection receives only when the request being answered needs
  bytes (its headers, or body its application asked for), and feeds all it
  receives to the parser.  Whatever the parser produced beyond the current
  request (pipelined requests) waits in order, so at most one receive's worth
  of data is buffered ahead, and pipelined requests are answered in order.
- An exception raised by a parser callback stops parsing at once
  (``HttpParserCallbackError``, the callback's exception as its context):
  that is how limits stop a peer sending an endless header.
- ``should_keep_alive()`` is only meaningful while the message's headers are
  complete, so it is read in ``on_headers_complete``.
- llhttp lets through what RFC 9112 asks a server to refuse, so
  ``on_headers_complete`` refuses it before the request is queued (the
  application never sees it, nor anything after it on the connection):
  ``Transfer-Encoding`` before HTTP/1.1 (section 6.1: its framing is faulty),
  a transfer coding before ``chunked`` (``identity, chunked``: corun
  decodes none, so 501), a final coding that is not ``chunked``
  (``xchunked``: llhttp only objects after the headers), and a missing,
  repeated or malformed ``Host`` (section 3.2).
- llhttp stops at the end of a head that switches protocols (``Connection:
  upgrade`` with ``Upgrade``, or CONNECT) and raises ``HttpParserUpgrade``.
  The application of such a request gets the socket in the environ (as
  ``werkzeug.socket`` and ``gunicorn.socket``, where simple-websocket and
  so Flask-Sock look for it).  If it returns without calling
  ``start_response`` (or raises, StopIteration and ConnectionError being
  how Flask-Sock says it is done), the connection was its own: the server
  sends nothing more, reads nothing more, and closes it.
- llhttp reads chunk extensions without bound and httptools reports
  neither them nor where in the buffer a chunk-size line began.  A line
  being read (chunk size, or a trailer field) holds no LF, and each parser
  event that opens one comes right after an LF, so the line's length so far
  is what follows the last LF of the piece last fed, or grows by a whole
  piece that has none.  A line that begins and ends inside one piece is no
  longer than the piece, so pieces are at most ``max_chunk_line`` long
  (except body bytes of a known length, fed whole).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket as _stdsocket
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from .server import StreamServer
from .timeout import Timeout

__all__ = ["ClientError", "FileWrapper", "WSGIHandler", "WSGIServer", "WSGISettings"]

_log = logging.getLogger("corun.wsgi")

_RECV_SIZE = 65536
# A body the application left unread is read and dropped up to this size so
# that the connection can serve its next request; beyond it, closing is cheaper.
_MAX_DRAIN = 1 << 20
_NO_BODY_STATUSES = frozenset({204, 304})
# RFC 3986's host and port, as RFC 9112 section 3.2 asks of the Host field
# (empty is allowed: a target with no authority).
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z._~!$&'()*+,;=:%-]+\]|(?:[0-9A-Za-z._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
Application = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class WSGISettings:
    """How a WSGI server treats its connections; shared by all the connections of one server."""

    #: Seconds a connection may stay idle waiting for its next request (None: forever).
    keepalive_timeout: float | None = 5.0
    #: Seconds each receive or send may wait while a request is read or answered (None: forever).
    timeout: float | None = 30.0
    #: Seconds a request head may take to arrive in full, counted from its first byte (408 beyond;
    #: None: no limit).  A client trickling its head a byte at a time holds its place no longer.
    header_timeout: float | None = 20.0
    #: Seconds an application may take for one request, answer included (None: no limit).
    request_timeout: float | None = None
    #: Longest request target, in bytes (414 beyond).
    max_request_line: int = 8190
    #: Most header fields in one request (431 beyond).
    max_header_count: int = 100
    #: Most bytes of header fields in one request (431 beyond).
    max_header_size: int = 65536
    #: Longest chunk-size line of a chunked body, extensions and CRLF included, in bytes (400 beyond).
    max_chunk_line: int = 4096
    #: Largest request body, in bytes (413 beyond; None: no limit).
    max_body_size: int | None = None
    #: The ``SERVER_NAME``/``SERVER_PORT`` of the environ (default: the socket's local address).
    server_name: str | None = None
    server_port: int | None = None
    #: ``wsgi.url_scheme`` (default: "https" on a TLS socket, else "http").
    url_scheme: str | None = None
    #: Where the access log goes (common log format, level INFO); None: no access log.
    access_log: logging.Logger | None = _log
    #: Where tracebacks of failed applications go.
    error_log: logging.Logger = _log
    #: The ``Server`` header sent when the application sets none ("": none).
    server_software: str = "corun"
    #: Set by the server when it stops: answered requests close their connection,
    #: and idle connections are closed.
    stopping: bool = False


class ClientError(OSError):
    """The client broke the request: raised by ``wsgi.input`` and ``write()`` when it cannot go on.

    ``status`` is the answer it deserves (400 bad framing, 408 too slow, 413
    body too large) or None when the client is gone.  The connection is
    closed after such an error.
    """

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing with an answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class FileWrapper:
    """``wsgi.file_wrapper``: a file to send; regular files go out with ``socket.sendfile``."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def regular_file_span(self) -> tuple[int, int] | None:
        """``(offset, bytes left)`` when the file is a regular file ``sendfile`` can send, else None."""
        try:
            fd = self.filelike.fileno()
            info = os.fstat(fd)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return offset, max(info.st_size - offset, 0)


class _Message:
    """One request as the parser delivers it: head, then body pieces, then its end."""

    __slots__ = (
        "after_size",
        "body",
        "complete",
        "continue_sent",
        "expect_continue",
        "header_bytes",
        "headers",
        "headers_complete",
        "keep_alive",
        "length",
        "line_bytes",
        "line_open",
        "method",
        "raw_head_bytes",
        "received",
        "started",
        "upgrade",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.raw_head_bytes = 0
        self.headers_complete = False
        self.method = "GET"
        self.version = "1.1"
        self.keep_alive = False
        self.length: int | None = None  # Content-Length
        self.expect_continue = False
        self.continue_sent = False
        self.body: deque[bytes] = deque()
        self.received = 0
        self.complete = False
        self.started = time.monotonic()  # when its first byte arrived
        self.upgrade = False  # the request asks to switch protocols (Upgrade, CONNECT)
        # Chunked framing: a chunk-size or trailer line is being read (line_open),
        # and how long it is so far; after_size: past a chunk-size line (data or trailers).
        self.line_open = False
        self.after_size = False
        self.line_bytes = 0


class _Input:
    """``wsgi.input``: the decoded request body (chunked or not), read on demand."""

    def __init__(self, handler: WSGIHandler, message: _Message) -> None:
        self._handler = handler
        self._message = message
        self._buffer = bytearray()
        self._done = False

    def _fill(self) -> bool:
        """Append the next piece of body to the buffer; False at the end of the body."""
        if self._done:
            return False
        piece = self._handler._next_body_piece(self._message)
        if not piece:
            self._done = True
            return False
        self._buffer += piece
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of body (all that is left if ``size`` is negative or None)."""
        if size is None or size < 0:
            while self._fill():
                pass
        else:
            while len(self._buffer) < size and self._fill():
                pass
        size = len(self._buffer) if size is None or size < 0 else size
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """One line of body, its ``\\n`` included (at most ``size`` bytes if given)."""
        limit = -1 if size is None else size
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                take = end + 1
                break
            if 0 <= limit <= len(self._buffer):
                take = limit
                break
            start = len(self._buffer)
            if not self._fill():
                take = len(self._buffer)
                break
        if 0 <= limit < take:
            take = limit
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        """The remaining lines (stopping once ``hint`` bytes were read, if positive)."""
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _DateCache:
    """The ``Date`` header and the access log's time, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self.http_date = ""
        self.log_date = ""

    def refresh(self) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self.http_date = formatdate(now, usegmt=True)
            self.log_date = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))


_dates = _DateCache()


class WSGIHandler:
    """Serves HTTP/1.1 requests arriving on one connection to a WSGI application, in order.

    Args:
        socket: the connected cooperative socket (plain or TLS).
        address: the peer's address, as ``accept()`` returned it.
        application: the WSGI application.
        server_settings: limits, timeouts and logging (defaults if None).
    """

    def __init__(
        self,
        socket: Any,
        address: Any,
        application: Application,
        server_settings: WSGISettings | None = None,
    ) -> None:
        self.socket = socket
        self.address = address
        self.application = application
        self.settings = settings = server_settings or WSGISettings()
        self._parser = httptools.HttpRequestParser(self)
        self._parsing: _Message | None = None
        self._ready: deque[_Message] = deque()
        self._error: tuple[int, str] | None = None
        self._eof = False
        self._upgraded = False
        self._idle = False
        self._socket_timeout: Any = object()  # what settimeout was last given
        self._base_environ = self._make_base_environ(settings)
        if getattr(socket, "family", None) in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
            # A response head and body sent in two writes must not wait for the
            # client's delayed ACK of the first.
            with contextlib.suppress(OSError):
                socket.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        # The request being answered.
        self._message: _Message | None = None
        self._status: str | None = None
        self._response_headers: list[tuple[str, str]] = []
        self._headers_sent = False
        self._response_length: int | None = None
        self._chunked = False
        self._body_allowed = True
        self._close_after = False
        self._body_sent = 0
        self._code = 0

    # -- the environ each request starts from --------------------------------

    def _make_base_environ(self, settings: WSGISettings) -> dict[str, Any]:
        try:
            local = self.socket.getsockname()
        except OSError:
            local = ""
        if isinstance(local, tuple):
            local_host, local_port = str(local[0]), str(local[1])
        else:
            local_host, local_port = str(local or "localhost"), ""
        if isinstance(self.address, tuple) and len(self.address) >= 2:
            remote_host, remote_port = str(self.address[0]), str(self.address[1])
        else:
            remote_host, remote_port = "", ""
        scheme = settings.url_scheme or ("https" if hasattr(self.socket, "getpeercert") else "http")
        return {
            "SERVER_NAME": settings.server_name or local_host,
            "SERVER_PORT": str(settings.server_port) if settings.server_port else local_port,
            "REMOTE_ADDR": remote_host,
            "REMOTE_PORT": remote_port,
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }

    # -- parser callbacks (called from inside feed_data) ----------------------

    def on_message_begin(self) -> None:
        self._parsing = _Message()

    def on_url(self, url: bytes) -> None:
        message = self._parsing
        assert message is not None
        message.url += url
        if len(message.url) > self.settings.max_request_line:
            raise _Reject(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        message = self._parsing
        assert message is not None
        message.header_bytes += len(name) + len(value) + 4
        if message.header_bytes > self.settings.max_header_size:
            raise _Reject(431, "header fields too large")
        if message.headers_complete:
            return  # a trailer field of a chunked body: counted, not passed on
        message.headers.append((name, value))
        if len(message.headers) > self.settings.max_header_count:
            raise _Reject(431, "too many header fields")

    def on_headers_complete(self) -> None:
        message = self._parsing
        assert message is not None
        parser = self._parser
        message.headers_complete = True
        message.method = parser.get_method().decode("ascii")
        message.version = parser.get_http_version()
        message.keep_alive = parser.should_keep_alive()
        length = None
        hosts: list[bytes] = []
        codings: list[bytes] = []
        for name, value in message.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value)  # llhttp has checked it is digits, and unique
            elif lowered == b"host":
                hosts.append(value)
            elif lowered == b"transfer-encoding":
                codings.extend(value.split(b","))
            elif lowered == b"expect" and value.lower() == b"100-continue":
                message.expect_continue = message.version == "1.1"
        if len(hosts) > 1:
            raise _Reject(400, "more than one Host field")
        if not hosts and message.version not in ("1.0", "0.9"):
            raise _Reject(400, "an HTTP/1.1 request needs a Host field")
        if hosts and not _HOST.fullmatch(hosts[0].strip(b" \t")):
            raise _Reject(400, "invalid Host field")
        if codings:
            _check_transfer_codings(message.version, codings)
            message.line_open = True  # the first chunk-size line follows
        message.length = length
        limit = self.settings.max_body_size
        if limit is not None and length is not None and length > limit:
            raise _Reject(413, "request body too large")
        self._ready.append(message)

    def on_body(self, body: bytes) -> None:
        message = self._parsing
        assert message is not None
        message.received += len(body)
        message.line_open = False
        limit = self.settings.max_body_size
        if limit is not None and message.received > limit:
            raise _Reject(413, "request body too large")
        message.body.append(body)

    def on_chunk_header(self) -> None:
        message = self._parsing
        assert message is not None
        message.after_size = True
        message.line_open = True  # until data arrives: trailer fields follow a last chunk

    def on_chunk_complete(self) -> None:
        message = self._parsing
        assert message is not None
        message.after_size = False
        message.line_open = True

    def on_message_complete(self) -> None:
        message = self._parsing
        assert message is not None
        message.complete = True
        self._parsing = None

    # -- receiving ---------------------------------------------------------------

    def _set_timeout(self, timeout: float | None) -> None:
        if timeout != self._socket_timeout:
            self.socket.settimeout(timeout)
            self._socket_timeout = timeout

    def _receive(self, timeout: float | None) -> None:
        """Receive once and feed the parser (TimeoutError, OSError reach the caller)."""
        self._set_timeout(timeout)
        data = self.socket.recv(_RECV_SIZE)
        if not data:
            self._eof = True
            return
        if self._error is not None or self._upgraded:
            return  # nothing after a framing error or an upgrade is HTTP we can read
        message = self._parsing
        step = self.settings.max_chunk_line
        if len(data) <= step or (
            message is not None
            and message.length is not None
            and message.length - message.received >= len(data)
        ):
            self._feed(data)  # all of it is body, or too little to hide a long line
            return
        # Fed in pieces no longer than a chunk-size line may be: a line that begins
        # and ends inside one piece is short enough, and one running over pieces is
        # measured at each piece's edges.
        for start in range(0, len(data), step):
            if not self._feed(data[start : start + step]):
                return

    def _feed(self, data: bytes) -> bool:
        """Feed ``data`` to the parser and check the limits it does not keep; False if parsing stopped."""
        settings = self.settings
        message = self._parsing
        if message is not None and message.line_open and not message.after_size:
            newline = data.find(b"\n")
            if message.line_bytes + (newline + 1 if newline >= 0 else len(data)) > settings.max_chunk_line:
                self._error = (400, "chunk-size line too long")
                return False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, _Reject):
                raise
            self._error = (cause.status, cause.reason)
            return False
        except httptools.HttpParserUpgrade:
            # llhttp stops after the head of a request that switches protocols
            # (Upgrade, CONNECT): what follows is the new protocol's, and the
            # request is the connection's last over HTTP.
            self._upgraded = True
            if self._ready:
                self._ready[-1].upgrade = True
            return False
        except httptools.HttpParserError as exc:
            self._error = (400, str(exc) or "malformed request")
            return False
        message = self._parsing
        if message is None:
            return True
        if not message.headers_complete:
            # llhttp keeps an unfinished header field in memory: bound it.
            message.raw_head_bytes += len(data)
            if message.raw_head_bytes > settings.max_header_size + settings.max_request_line:
                self._error = (431, "header fields too large")
                return False
        elif message.line_open:
            newline = data.rfind(b"\n")
            if newline >= 0:
                message.line_bytes = len(data) - newline - 1
            else:
                message.line_bytes += len(data)
            if message.after_size:
                if message.line_bytes > settings.max_header_size:
                    self._error = (431, "trailer field too large")
                    return False
            elif message.line_bytes > settings.max_chunk_line:
                self._error = (400, "chunk-size line too long")
                return False
        return True

    def _next_message(self) -> _Message | None:
        """The next request whose headers are complete; None when the connection is done."""
        settings = self.settings
        began = 0.0
        while not self._ready:
            if self._error is not None:
                status, reason = self._error
                self._send_error(status, reason)
                return None
            if self._eof or self._upgraded or settings.stopping:
                return None
            if not began:
                began = time.monotonic()
            message = self._parsing
            between_requests = message is None
            if between_requests:
                # From when the wait began: blank lines sent now and then do not extend it.
                timeout = _time_left(settings.keepalive_timeout, began)
            else:
                timeout = settings.timeout
                if settings.header_timeout is not None:
                    # From the head's first byte, or from when this wait began if that
                    # byte came in while the previous request was being answered.
                    assert message is not None
                    left = max(message.started, began) + settings.header_timeout - time.monotonic()
                    timeout = left if timeout is None else min(timeout, left)
            self._idle = between_requests
            try:
                if timeout is not None and timeout <= 0:
                    raise TimeoutError
                self._receive(timeout)
            except TimeoutError:
                if not between_requests:
                    self._send_error(408, "request not received in time")
                return None
            finally:
                self._idle = False
        return self._ready.popleft()

    def _next_body_piece(self, message: _Message) -> bytes:
        """The next piece of ``message``'s body as it arrives; b"" at its end (``wsgi.input``'s source)."""
        if message.expect_continue and not message.continue_sent:
            message.continue_sent = True
            if not self._headers_sent and not message.complete:
                self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not message.body and not message.complete:
            if self._error is not None:
                self._close_after = True
                raise ClientError(*self._error)
            if self._eof:
                self._close_after = True
                raise ClientError(None, "client closed the connection before the body's end")
            try:
                self._receive(self.settings.timeout)
            except TimeoutError:
                self._close_after = True
                raise ClientError(408, "request body not received in time") from None
            except OSError as exc:
                self._close_after = True
                raise ClientError(None, f"connection lost: {exc}") from exc
        if message.body:
            return message.body.popleft()
        return b""

    def close_if_idle(self) -> None:
        """Close the connection if it waits for a next request (used by a stopping server)."""
        if self._idle:
            self.socket.close()

    # -- serving -----------------------------------------------------------------

    def serve(self) -> None:
        """Answer the connection's requests until it closes, fails or times out; then close it."""
        try:
            while True:
                message = self._next_message()
                if message is None:
                    break
                if not self._handle(message):
                    break
        except OSError:
            pass  # the client went away: nobody is left to answer
        finally:
            self.socket.close()

    def _handle(self, message: _Message) -> bool:
        """Answer one request; True if the connection can carry the next one."""
        self._message = message
        self._status = None
        self._response_headers = []
        self._headers_sent = False
        self._response_length = None
        self._chunked = False
        self._close_after = not message.keep_alive or message.upgrade
        self._body_sent = 0
        self._code = 0
        environ = self._environ(message)
        if message.upgrade:
            # The application may take the connection over (a WebSocket): the socket
            # goes where werkzeug's and gunicorn's servers put it, in blocking mode
            # as theirs is, until the application answers over HTTP instead.
            environ["werkzeug.socket"] = environ["gunicorn.socket"] = self.socket
            self._set_timeout(None)
        else:
            self._set_timeout(self.settings.timeout)
        deadline = self.settings.request_timeout
        timer = Timeout.start_new(deadline) if deadline is not None else None
        try:
            self._run_application(environ)
        except Timeout as exc:
            if exc is not timer:
                raise
            self._fail(503, "the request took too long", None)
        finally:
            if timer is not None:
                timer.cancel()
        self._log_access(message, environ)
        self._message = None
        if self._close_after or self.settings.stopping:
            return False
        return self._finish_body(message)

    def _run_application(self, environ: dict[str, Any]) -> None:
        try:
            result = self.application(environ, self._start_response)
            try:
                self._send_result(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ClientError as exc:
            self._close_after = True
            if exc.status is not None:
                self._fail(exc.status, exc.reason, None)
        except Exception as exc:
            message = self._message
            if message is not None and message.upgrade and not self._headers_sent:
                # The application may have written on the socket itself (a 101 and
                # frames): nothing more may go out.  Flask-Sock ends its WebSockets
                # with StopIteration (gunicorn's way) or ConnectionError (werkzeug's).
                self._close_after = True
                if isinstance(exc, (StopIteration, ConnectionError)):
                    self._code = 101
                else:
                    self._code = 500
                    self.settings.error_log.error(
                        "%s %s failed", message.method, self._request_uri(), exc_info=exc
                    )
                return
            self._fail(500, "the application failed", exc)

    def _fail(self, status: int, reason: str, exc: BaseException | None) -> None:
        """Answer ``status`` instead of the application's response, or cut the connection if it began."""
        if exc is not None:
            self.settings.error_log.error(
                "%s %s failed",
                self._message.method if self._message else "?",
                self._request_uri(),
                exc_info=exc,
            )
        if self._headers_sent:
            self._close_after = True  # the client holds half a response: only closing tells it
            return
        self._code = status
        try:
            self._send_error(status, reason, close=self._close_after or status != 500)
        except OSError:
            self._close_after = True

    def _finish_body(self, message: _Message) -> bool:
        """Read and drop the body the application left unread, so the next request can be parsed."""
        if message.complete:
            return True
        if message.expect_continue and not message.continue_sent:
            return False  # the client may still be waiting for a 100 that will never come
        dropped = 0
        try:
            while not message.complete:
                piece = self._next_body_piece(message)
                if not piece:
                    break
                dropped += len(piece)
                if dropped > _MAX_DRAIN:
                    return False
        except ClientError:
            return False
        return True

    def _environ(self, message: _Message) -> dict[str, Any]:
        environ = self._base_environ.copy()
        url = message.url
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
            path = path.partition(b"#")[0]
            query = query.partition(b"#")[0]
        elif url == b"*":
            path, query = url, b""
        else:
            try:
                parsed = httptools.parse_url(url)
                path, query = parsed.path or b"/", parsed.query or b""
            except httptools.HttpParserInvalidURLError:
                path, query = url, b""
        environ["REQUEST_METHOD"] = message.method
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["RAW_URI"] = url.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/" + message.version
        for name, value in message.headers:
            key = name.decode("latin-1").upper()
            if "_" in key:
                # HTTP_X_A could come from X-A or X_A: a proxy checks one and the
                # application reads the other.  Such names are dropped.
                continue
            key = key.replace("-", "_")
            if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
                key = "HTTP_" + key
            text = value.decode("latin-1")
            if key in environ:
                environ[key] += "," + text
            else:
                environ[key] = text
        environ["wsgi.input"] = _Input(self, message)
        return environ

    def _request_uri(self) -> str:
        return self._message.url.decode("latin-1") if self._message is not None else ""

    # -- answering -----------------------------------------------------------------

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``."""
        if exc_info is not None:
            try:
                if self._headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no cycle through this frame
        elif self._status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError(f"invalid status {status!r}: expected a str like '200 OK'")
        length = None
        for header in headers:
            name, value = header
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"header {header!r}: name and value must be str")
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError(f"header {header!r} would break the response framing")
            lowered = name.lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "transfer-encoding":
                raise ValueError(
                    "the server frames the response: an application must not set Transfer-Encoding"
                )
            elif lowered == "connection" and "close" in value.lower():
                self._close_after = True
        self._status = status
        self._response_headers = list(headers)
        self._response_length = length
        if self._message is not None and self._message.upgrade:
            self._set_timeout(self.settings.timeout)  # answered over HTTP after all
        return self._write

    def _write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable: send ``data`` now."""
        if self._status is None:
            raise AssertionError("write() called before start_response()")
        if data:
            self._send_body(data)

    def _head(self, known_length: int | None) -> bytes:
        """The response head; decides the framing of the body that follows."""
        message = self._message
        assert message is not None and self._status is not None
        status = self._status
        code = self._code = int(status[:3])
        self._body_allowed = not (code in _NO_BODY_STATUSES or code < 200 or message.method == "HEAD")
        names = {name.lower() for name, _ in self._response_headers}
        lines = [f"HTTP/1.1 {status}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in self._response_headers)
        if code in _NO_BODY_STATUSES or code < 200:
            self._response_length = 0 if self._response_length is None else self._response_length
        elif self._response_length is None:
            if known_length is not None:
                self._response_length = known_length
                lines.append(f"Content-Length: {known_length}\r\n")
            elif not self._body_allowed:
                pass  # HEAD of a streamed response: no body, nothing to frame
            elif message.version == "1.1":
                self._chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                self._close_after = True  # HTTP/1.0 without a length: the end is the close
        if self.settings.stopping:
            self._close_after = True
        if "connection" not in names:
            if self._close_after:
                lines.append("Connection: close\r\n")
            elif message.version == "1.0":
                lines.append("Connection: keep-alive\r\n")
        _dates.refresh()
        if "date" not in names:
            lines.append(f"Date: {_dates.http_date}\r\n")
        if "server" not in names and self.settings.server_software:
            lines.append(f"Server: {self.settings.server_software}\r\n")
        lines.append("\r\n")
        self._headers_sent = True
        return "".join(lines).encode("latin-1")

    def _send(self, data: bytes) -> None:
        try:
            self.socket.sendall(data)
        except OSError as exc:
            self._close_after = True
            raise ClientError(None, f"connection lost: {exc}") from exc

    def _send_body(self, data: bytes, known_length: int | None = None) -> None:
        head = self._head(known_length) if not self._headers_sent else b""
        if not self._body_allowed:
            if head:
                self._send(head)
            return
        if self._chunked:
            self._send(b"%s%x\r\n%s\r\n" % (head, len(data), data))
        else:
            if self._response_length is not None:
                room = self._response_length - self._body_sent
                if len(data) > room:
                    self.settings.error_log.error(
                        "%s: the application sent more than its Content-Length of %d",
                        self._request_uri(),
                        self._response_length,
                    )
                    data = data[:room]
                    self._close_after = True
            self._send(head + data if head else data)
        self._body_sent += len(data)

    def _send_result(self, result: Iterable[bytes]) -> None:
        if isinstance(result, FileWrapper) and self._send_file(result):
            return
        if isinstance(result, (list, tuple)) and self._status is not None and not self._headers_sent:
            # A sequence's length is known: answered with one Content-Length and one send.
            data = b"".join(result)
            self._send_body(data, known_length=len(data))
        else:
            upgrade = self._message is not None and self._message.upgrade
            for data in result:
                if data:
                    self._send_body(data)
                elif self._status is None and not upgrade:
                    raise AssertionError("the application yielded before calling start_response()")
        if self._status is None:
            if self._message is not None and self._message.upgrade:
                # It took the connection over and answered on the socket itself.
                self._close_after = True
                self._code = 101
                return
            raise AssertionError("the application returned without calling start_response()")
        if not self._headers_sent:
            self._send(self._head(0))
        elif self._chunked:
            self._send(b"0\r\n\r\n")
        elif (
            self._body_allowed
            and self._response_length is not None
            and self._body_sent < self._response_length
        ):
            self.settings.error_log.error(
                "%s: the application sent %d bytes of its Content-Length of %d",
                self._request_uri(),
                self._body_sent,
                self._response_length,
            )
            self._close_after = True

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with ``sendfile``; False if it must be iterated instead."""
        if self._status is None or self._headers_sent:
            return False
        span = wrapper.regular_file_span()
        if span is None:
            return False
        offset, size = span
        if self._response_length is not None:
            size = min(size, self._response_length)
        self._send(self._head(size))
        if not self._body_allowed or not size:
            return True
        try:
            sent = self.socket.sendfile(wrapper.filelike, offset, size)
        except OSError as exc:
            self._close_after = True
            raise ClientError(None, f"connection lost: {exc}") from exc
        self._body_sent = sent
        if sent < size:
            self._close_after = True  # the file shrank: the promised length cannot be kept
        return True

    def _send_error(self, status: int, reason: str, close: bool = True) -> None:
        """Answer ``status`` with a short plain-text body."""
        body = f"{status} {_REASONS.get(status, '')}\n{reason}\n".encode("latin-1", "replace")
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}"
            "\r\n"
        )
        self._close_after = self._close_after or close
        self._headers_sent = True
        self._body_sent = len(body)
        self._set_timeout(self.settings.timeout)
        self._send(head.encode("latin-1") + body)
        if self._message is None:
            self._log_line("-", status, len(body))

    # -- access log --------------------------------------------------------------

    def _log_access(self, message: _Message, environ: dict[str, Any]) -> None:
        logger = self.settings.access_log
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        request = f"{message.method} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        self._log_line(request, self._code, self._body_sent)

    def _log_line(self, request: str, status: int, size: int) -> None:
        logger = self.settings.access_log
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        _dates.refresh()
        host = self._base_environ["REMOTE_ADDR"] or "-"
        logger.info('%s - - [%s] "%s" %d %s', host, _dates.log_date, request, status, size or "-")


def _time_left(limit: float | None, since: float) -> float | None:
    """Seconds left of ``limit`` counted from ``since`` (None: no limit)."""
    return None if limit is None else since + limit - time.monotonic()


def _check_transfer_codings(version: str, codings: list[bytes]) -> None:
    """Refuse a ``Transfer-Encoding`` this server cannot frame by (RFC 9112 sections 6.1, 6.3, 7)."""
    if version != "1.1":
        # Section 6.1: the framing of an HTTP/1.0 (or 0.9) message with Transfer-Encoding is
        # faulty.  Processing it and then closing is allowed too; refusing means no
        # part of it, read either way, reaches the application.
        raise _Reject(400, f"Transfer-Encoding in an HTTP/{version} request")
    items = [coding.strip().lower() for coding in codings]
    items = [item for item in items if item]  # empty list elements are allowed and mean nothing
    if not items or items[-1] != b"chunked" or items.count(b"chunked") > 1:
        raise _Reject(400, "Transfer-Encoding does not end in one chunked")
    if len(items) > 1:
        # Section 6.1: 501 for a coding the server does not understand; corun decodes none.
        if all(_TOKEN.fullmatch(item.split(b";", 1)[0].strip()) for item in items):
            raise _Reject(501, "transfer codings other than chunked are not implemented")
        raise _Reject(400, "invalid Transfer-Encoding")


class WSGIServer(StreamServer):
    """A ``StreamServer`` answering HTTP/1.1 with a WSGI application.

    Args:
        listener: an address tuple, a unix path or a listening socket.
        application: the WSGI application.
        **settings: ``ssl_context`` and ``spawn`` go to ``StreamServer``; the
            rest are fields of ``WSGISettings`` (timeouts, limits, logs).
    """

    def __init__(self, listener: Any, application: Application, **settings: Any) -> None:
        server_options = {
            key: settings.pop(key) for key in ("spawn", "backlog", "ssl_context") if key in settings
        }
        if "url_scheme" not in settings and server_options.get("ssl_context") is not None:
            settings["url_scheme"] = "https"
        self.application = application
        self.settings = WSGISettings(**settings)
        self._connections: set[WSGIHandler] = set()
        super().__init__(listener, **server_options)

    def handle(self, socket: Any, address: Any) -> None:
        """Serve one connection (run in its own task by the server)."""
        handler = WSGIHandler(socket, address, self.application, self.settings)
        self._connections.add(handler)
        try:
            handler.serve()
        finally:
            self._connections.discard(handler)

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, close idle connections, let requests in flight finish within ``timeout``."""
        self.settings.stopping = True
        for handler in list(self._connections):
            handler.close_if_idle()
        super().stop(timeout)
