"""asyncio and blocking code in one thread: an asyncio server, blocking clients, and calls both ways.

Run it:  python examples/asyncio_together.py
"""

from corun import monkey

monkey.patch_all()

import asyncio  # noqa: E402 - after patching, as a program under corun would
import contextvars  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

import corun  # noqa: E402

DELAY = 0.3
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An asyncio echo handler that takes DELAY seconds to answer each line."""
    line = await reader.readline()
    await asyncio.sleep(DELAY)
    writer.write(line.upper())
    await writer.drain()
    writer.close()


async def start_server() -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def blocking_client(port: int, n: int) -> bytes:
    """Plain blocking socket code, as an unmodified library would write it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"hello {n}\n".encode())
        return sock.makefile("rb").readline().strip()


def blocking_lookup(key: str) -> str:
    """A blocking call (patched time.sleep) that a coroutine hands to a task of its own."""
    time.sleep(DELAY)
    return f"{key} for {request_id.get()}"


async def many_lookups() -> list[str]:
    request_id.set("request-42")  # the tasks to_async starts see the coroutine's context
    return await asyncio.gather(*(corun.to_async(blocking_lookup, f"key{i}") for i in range(5)))


def main() -> None:
    # 1. From blocking code, run a coroutine on the shared loop: the server starts there.
    server, port = corun.await_(start_server())

    # 2. Ten blocking clients, one task each, talk to the asyncio server at once.
    t0 = time.monotonic()
    clients = [corun.spawn(blocking_client, port, n) for n in range(10)]
    corun.joinall(clients, raise_error=True)
    elapsed = time.monotonic() - t0
    print(
        f"asyncio server, 10 blocking clients: {len(clients)} replies in {elapsed:.2f} s "
        f"(each reply takes {DELAY} s)"
    )
    print(f"first reply: {clients[0].value.decode()}")

    # 3. From a coroutine, run blocking code in tasks with to_async.
    t0 = time.monotonic()
    results = corun.await_(many_lookups())
    print(f"coroutine, 5 blocking calls through to_async: {time.monotonic() - t0:.2f} s")
    print(f"first result: {results[0]}")

    server.close()
    corun.await_(server.wait_closed())


if __name__ == "__main__":
    main()
