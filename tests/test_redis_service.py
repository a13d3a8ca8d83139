"""The tests' own Redis server: real, reachable on loopback, gone with its files afterwards."""

from __future__ import annotations

import os
import socket

import pytest

from tests.redis_service import running_redis


def test_a_server_of_our_own_answers_keeps_nothing_on_disk_and_stops() -> None:
    with running_redis() as server:
        assert server.command("SET", "greeting", "hello").startswith(b"+OK")
        assert server.command("GET", "greeting") == b"$5\r\nhello\r\n"
        assert server.command("CONFIG", "GET", "save").endswith(b"$0\r\n\r\n")  # no snapshots
        first, second = server.fresh_url(), server.fresh_url()
        assert first != second and first.startswith(f"redis://127.0.0.1:{server.port}/")
        process, port, directory = server.process, server.port, server.directory
    assert process.poll() is not None
    assert not directory.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert os.path.basename(str(directory)).startswith("redis-")
