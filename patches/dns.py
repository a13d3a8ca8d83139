"""Cooperative twin of the name lookups of :mod:`socket`: the C resolver runs in the hub's thread pool.

Facts this module relies on:

- ``getaddrinfo`` and its relatives have no readiness API: the only way to
  keep a slow lookup off the hub is a real OS thread.  The C functions
  release the GIL, so the hub's thread runs the other tasks meanwhile.
- A literal IP address, or a lookup flagged numeric (``AI_NUMERICHOST``,
  ``NI_NUMERICHOST | NI_NUMERICSERV``), is answered inside the C library
  without asking anyone; a thread hop would cost more than the answer, so
  those calls are made at once.  A reverse lookup (``gethostbyaddr``) of a
  literal address is a real query and always goes to a thread.
- A thread with no hub has no other task to run, so there (the pool's own
  workers included) the lookup is made directly, as the stdlib makes it.
"""

from __future__ import annotations

import socket as _stdsocket
from collections.abc import Callable
from typing import Any, TypeVar

from corun.hub import _peek_hub

__target__ = "socket"

__all__ = ["getaddrinfo", "getfqdn", "gethostbyaddr", "gethostbyname", "gethostbyname_ex", "getnameinfo"]
__implements__ = [
    "getaddrinfo",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
]

T = TypeVar("T")

AF_UNSPEC = _stdsocket.AF_UNSPEC
AF_INET = _stdsocket.AF_INET
AF_INET6 = _stdsocket.AF_INET6
AI_NUMERICHOST = _stdsocket.AI_NUMERICHOST
AI_NUMERICSERV = _stdsocket.AI_NUMERICSERV
AI_CANONNAME = _stdsocket.AI_CANONNAME
NI_NUMERICHOST = _stdsocket.NI_NUMERICHOST
NI_NUMERICSERV = _stdsocket.NI_NUMERICSERV

# The originals, captured before patching replaces them on the module.
# getaddrinfo is the stdlib's Python wrapper (it turns numbers into enums)
# over the C function; the others are the C functions themselves.
_original_getaddrinfo = _stdsocket.getaddrinfo
_original_gethostbyname = _stdsocket.gethostbyname
_original_gethostbyname_ex = _stdsocket.gethostbyname_ex
_original_gethostbyaddr = _stdsocket.gethostbyaddr
_original_getnameinfo = _stdsocket.getnameinfo
_original_gethostname = _stdsocket.gethostname

# The families a literal of each IP version can be looked up in without a query.
_FAMILIES_OF_VERSION = {4: (AF_UNSPEC, AF_INET), 6: (AF_UNSPEC, AF_INET6)}


def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the hub's thread pool, only the calling task waiting for it."""
    hub = _peek_hub()
    if hub is None:
        return func(*args)
    # Imported at the first lookup: patching alone needs no thread pool.
    from corun.threadpool import get_threadpool

    return get_threadpool(hub).apply(func, args)


def _ip_version(host: Any) -> int | None:
    """4 or 6 if ``host`` is a literal IP address (str or bytes), else None."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(host, str):
        return None
    import ipaddress  # at the first lookup, not when patching

    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _is_numeric_port(port: Any, flags: int) -> bool:
    if port is None or isinstance(port, int) or flags & AI_NUMERICSERV:
        return True
    return isinstance(port, (str, bytes)) and port.isascii() and port.isdigit()


def _is_local_lookup(host: Any, port: Any, family: int, flags: int) -> bool:
    """Whether ``getaddrinfo`` can answer without asking a name service."""
    if not _is_numeric_port(port, flags):
        return False  # a service name: /etc/services, or NSS, may be slow
    if host is None or flags & AI_NUMERICHOST:
        return True
    if flags & AI_CANONNAME:
        return False
    version = _ip_version(host)
    return version is not None and family in _FAMILIES_OF_VERSION[version]


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, Any, int, str, Any]]:
    """Resolve ``host`` and ``port`` into socket addresses (see ``socket.getaddrinfo``); cooperative."""
    if _is_local_lookup(host, port, family, flags):
        return _original_getaddrinfo(host, port, family, type, proto, flags)
    return _in_thread(_original_getaddrinfo, host, port, family, type, proto, flags)


def gethostbyname(hostname: str) -> str:
    """The IPv4 address of ``hostname`` (see ``socket.gethostbyname``); cooperative."""
    if _ip_version(hostname) == 4:
        return _original_gethostbyname(hostname)
    return _in_thread(_original_gethostbyname, hostname)


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """``(name, aliases, IPv4 addresses)`` of ``hostname`` (see ``socket.gethostbyname_ex``); cooperative."""
    if _ip_version(hostname) == 4:
        return _original_gethostbyname_ex(hostname)
    return _in_thread(_original_gethostbyname_ex, hostname)


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """``(name, aliases, addresses)`` of a host (see ``socket.gethostbyaddr``); cooperative."""
    return _in_thread(_original_gethostbyaddr, ip_address)


def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    """``(host, port)`` names for a socket address (see ``socket.getnameinfo``); cooperative."""
    if not isinstance(sockaddr, tuple) or (flags & NI_NUMERICHOST and flags & NI_NUMERICSERV):
        try:
            return _original_getnameinfo(sockaddr, flags)  # rejected, or answered, without a query
        finally:
            # A traceback of the rejection keeps this frame alive: it must not
            # keep the caller's object alive as well.
            del sockaddr
    return _in_thread(_original_getnameinfo, sockaddr, flags)


def getfqdn(name: str = "") -> str:
    """The fully qualified domain name of ``name`` (default: this host); cooperative.

    As the stdlib: the first of the host's name and aliases that contains a
    dot, else its name; ``name`` itself when the lookup fails.
    """
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = _original_gethostname()
    try:
        hostname, aliases, _addresses = gethostbyaddr(name)
    except OSError:
        return name
    for candidate in (hostname, *aliases):
        if "." in candidate:
            return candidate
    return hostname
