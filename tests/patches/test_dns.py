"""Cooperative name lookups: the C resolver in the hub's thread pool, literals answered at once."""

from __future__ import annotations

import socket as stdlib_socket
import threading
import time
from collections.abc import Callable
from typing import Any

import corun.patches.dns as codns
import pytest

import corun
from corun.hub import Hub, _peek_hub
from corun.threadpool import get_threadpool

from ..conftest import run_python


def in_thread_recorder(monkeypatch: pytest.MonkeyPatch, name: str, delay: float = 0.0) -> list[int]:
    """Wrap the captured original ``name`` so that it records the thread it ran in (after ``delay``)."""
    threads: list[int] = []
    original: Callable[..., Any] = getattr(codns, name)

    def wrapper(*args: Any) -> Any:
        threads.append(threading.get_ident())
        if delay:
            time.sleep(delay)  # a slow name service, blocking only this thread
        return original(*args)

    monkeypatch.setattr(codns, name, wrapper)
    return threads


def test_module_declares_what_it_patches() -> None:
    assert codns.__target__ == "socket"
    assert set(codns.__implements__) == {
        "getaddrinfo",
        "gethostbyname",
        "gethostbyname_ex",
        "gethostbyaddr",
        "getnameinfo",
        "getfqdn",
    }
    for name in codns.__implements__:
        assert hasattr(stdlib_socket, name)
        assert getattr(codns, name).__module__ == "corun.patches.dns"


def test_literal_and_numeric_lookups_use_no_thread(hub: Hub) -> None:
    numeric = stdlib_socket.NI_NUMERICHOST | stdlib_socket.NI_NUMERICSERV
    cases: list[tuple[str, tuple[Any, ...]]] = [
        ("getaddrinfo", ("127.0.0.1", 80)),
        ("getaddrinfo", ("::1", "8080", stdlib_socket.AF_INET6, stdlib_socket.SOCK_STREAM)),
        ("getaddrinfo", (b"127.0.0.1", None)),
        ("getaddrinfo", (None, 80, 0, stdlib_socket.SOCK_STREAM)),
        ("getaddrinfo", ("10.1.2.3", "443", 0, 0, 0, stdlib_socket.AI_NUMERICSERV)),
        ("gethostbyname", ("127.0.0.1",)),
        ("gethostbyname_ex", ("192.0.2.7",)),
        ("getnameinfo", (("127.0.0.1", 80), numeric)),
    ]
    for name, args in cases:
        assert getattr(codns, name)(*args) == getattr(stdlib_socket, name)(*args), (name, args)
    with pytest.raises(stdlib_socket.gaierror):
        codns.getaddrinfo("localhost", 80, flags=stdlib_socket.AI_NUMERICHOST)
    with pytest.raises(stdlib_socket.gaierror):
        codns.getaddrinfo("127.0.0.1", "http", flags=stdlib_socket.AI_NUMERICSERV)
    with pytest.raises(TypeError):
        codns.getnameinfo("127.0.0.1", 0)  # type: ignore[arg-type]
    assert get_threadpool(hub).size == 0  # no thread was started


def test_getaddrinfo_keeps_the_stdlib_result_types() -> None:
    (family, kind, proto, canonname, sockaddr), *_ = codns.getaddrinfo(
        "127.0.0.1", 80, type=stdlib_socket.SOCK_STREAM
    )
    assert family is stdlib_socket.AF_INET and kind is stdlib_socket.SOCK_STREAM
    assert (proto, canonname, sockaddr) == (stdlib_socket.IPPROTO_TCP, "", ("127.0.0.1", 80))


def test_names_are_looked_up_in_the_thread_pool(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    threads = in_thread_recorder(monkeypatch, "_original_getaddrinfo")
    expected = stdlib_socket.getaddrinfo("localhost", 80, 0, stdlib_socket.SOCK_STREAM)
    assert codns.getaddrinfo("localhost", 80, 0, stdlib_socket.SOCK_STREAM) == expected
    # A service name is not numeric either: it is looked up in a thread too.
    assert codns.getaddrinfo("127.0.0.1", "http", type=stdlib_socket.SOCK_STREAM)[0][4] == ("127.0.0.1", 80)
    assert len(threads) == 2
    assert threading.get_ident() not in threads
    assert get_threadpool(hub).statistics().threads >= 1


def test_every_lookup_by_name_matches_the_stdlib() -> None:
    assert codns.gethostbyname("localhost") == stdlib_socket.gethostbyname("localhost")
    assert codns.gethostbyname_ex("localhost") == stdlib_socket.gethostbyname_ex("localhost")
    # A reverse lookup is a query even for a literal address.
    assert codns.gethostbyaddr("127.0.0.1") == stdlib_socket.gethostbyaddr("127.0.0.1")
    assert codns.getnameinfo(("127.0.0.1", 80), 0) == stdlib_socket.getnameinfo(("127.0.0.1", 80), 0)
    assert codns.getfqdn("localhost") == stdlib_socket.getfqdn("localhost")


def test_reverse_lookups_use_threads_even_for_literals(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    by_addr = in_thread_recorder(monkeypatch, "_original_gethostbyaddr")
    name_info = in_thread_recorder(monkeypatch, "_original_getnameinfo")
    codns.gethostbyaddr("127.0.0.1")
    codns.getnameinfo(("127.0.0.1", 80), stdlib_socket.NI_NUMERICHOST)  # the port still gets a name
    assert len(by_addr) == 1 and len(name_info) == 1
    assert threading.get_ident() not in by_addr + name_info


def test_a_slow_lookup_lets_other_tasks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    in_thread_recorder(monkeypatch, "_original_getaddrinfo", delay=0.3)
    ticks = 0

    def ticker() -> None:
        nonlocal ticks
        while True:
            corun.sleep(0.01)
            ticks += 1

    ticking = corun.spawn(ticker)
    start = time.monotonic()
    lookups = [corun.spawn(codns.getaddrinfo, "localhost", 80) for _ in range(10)]
    corun.joinall(lookups, raise_error=True)
    elapsed = time.monotonic() - start
    ticking.kill()
    assert all(t.value for t in lookups)
    assert elapsed < 1.5  # ten 0.3 s lookups side by side (the hub's ten threads), not 3 s one after another
    assert ticks >= 10


def test_errors_are_the_stdlib_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(stdlib_socket.gaierror) as info:
        codns.getaddrinfo("localhost", "no-such-service-xyz")
    with pytest.raises(stdlib_socket.gaierror) as direct:
        stdlib_socket.getaddrinfo("localhost", "no-such-service-xyz")
    assert info.value.errno == direct.value.errno

    def no_such_host(address: str) -> Any:
        raise stdlib_socket.herror(1, "Unknown host")

    monkeypatch.setattr(codns, "_original_gethostbyaddr", no_such_host)
    with pytest.raises(stdlib_socket.herror, match="Unknown host"):
        codns.gethostbyaddr("192.0.2.1")


def test_getfqdn_picks_the_first_dotted_name(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "box": ("box", ["other", "box.example.org", "x.y"], ["192.0.2.1"]),
        "plain": ("plain", ["alias"], ["192.0.2.2"]),
        "dotted.example": ("dotted.example", [], ["192.0.2.3"]),
    }

    def fake_gethostbyaddr(name: str) -> Any:
        if name not in answers:
            raise stdlib_socket.herror(1, "Unknown host")
        return answers[name]

    monkeypatch.setattr(codns, "_original_gethostbyaddr", fake_gethostbyaddr)
    monkeypatch.setattr(codns, "_original_gethostname", lambda: "box")
    assert codns.getfqdn("box") == "box.example.org"
    assert codns.getfqdn("  plain ") == "plain"
    assert codns.getfqdn("dotted.example") == "dotted.example"
    assert codns.getfqdn("unknown") == "unknown"
    assert codns.getfqdn() == "box.example.org"
    assert codns.getfqdn("0.0.0.0") == "box.example.org"


def test_a_thread_without_a_hub_resolves_directly(hub: Hub) -> None:
    seen: dict[str, Any] = {}

    def in_plain_thread() -> None:
        seen["result"] = codns.getaddrinfo("localhost", 80)
        seen["hub"] = _peek_hub()

    thread = threading.Thread(target=in_plain_thread)
    thread.start()
    thread.join()
    assert seen["result"] == stdlib_socket.getaddrinfo("localhost", 80)
    assert seen["hub"] is None  # no hub (and no pool) was made just to resolve a name
    assert get_threadpool(hub).size == 0


def test_patched_socket_module_resolves_names_in_the_pool() -> None:
    proc = run_python(
        """
        import socket
        import corun
        import corun.patches.dns as codns
        from corun.threadpool import get_threadpool
        import corun.patches.socket as cosocket
        for module in (cosocket, codns):
            for name in module.__implements__:
                setattr(socket, name, getattr(module, name))

        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        print("literal", socket.getaddrinfo("127.0.0.1", port)[0][4] == ("127.0.0.1", port))
        print("no_thread_yet", get_threadpool().size == 0)
        with socket.create_connection(("localhost", port)) as c:
            print("connected", c.getpeername() == ("127.0.0.1", port), type(c).__module__)
        print("pool", get_threadpool().statistics().threads >= 1)
        print("fqdn", socket.getfqdn is codns.getfqdn, socket.getfqdn("localhost"))
        server.close()
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["literal"] == "True" and lines["no_thread_yet"] == "True"
    assert lines["connected"] == "True corun.patches.socket"
    assert lines["pool"] == "True"
    assert lines["fqdn"] == "True localhost"
