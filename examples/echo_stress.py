"""A many-client stress test for an echo server: ordinary blocking sockets, one corun task per client.

After ``monkey.patch_all()``, the plain ``socket`` code below (connect,
``sendall``, ``recv``) switches tasks whenever it would wait, so a few hundred
clients talk to the server at the same time from one thread. Each client
sends ``--messages`` messages of different sizes, one at a time, and checks
that every byte comes back in order.

Without an address it starts its own server (examples/echo_server.py
--serve, in another process) and stops it afterwards.

Run it:  python examples/echo_stress.py   (against its own echo server)
         python examples/echo_stress.py 127.0.0.1:8000 --clients 500 --messages 100
"""

from corun import monkey

monkey.patch_all()

import argparse  # noqa: E402 - patch first, then import what uses sockets
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import corun  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent


def message(client: int, n: int) -> bytes:
    """The ``n``-th message of ``client``: distinct bytes, 1 B to about 16 KB."""
    size = 1 + (client * 7919 + n * 104729) % 16384
    stamp = f"<{client}:{n}>".encode()
    return (stamp * (size // len(stamp) + 1))[:size]


def run_client(address: tuple[str, int], client: int, messages: int) -> int:
    """Send ``messages`` messages, each after the previous one came back whole; return the bytes echoed."""
    total = 0
    with socket.create_connection(address, timeout=30) as sock:
        for n in range(messages):
            data = message(client, n)
            sock.sendall(data)
            received = b""
            while len(received) < len(data):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"client {client}: the server hung up after {n} messages")
                received += chunk
            if received != data:
                raise ValueError(f"client {client}: message {n} came back changed")
            total += len(data)
    return total


def stress(address: tuple[str, int], clients: int, messages: int) -> bool:
    """Run every client at once; print a summary; True if every echo was right."""
    started = time.perf_counter()
    tasks = [corun.spawn(run_client, address, c, messages) for c in range(clients)]
    corun.joinall(tasks)
    elapsed = time.perf_counter() - started
    failed = [t for t in tasks if not t.successful()]
    echoed = sum(t.value for t in tasks if t.successful())
    total = clients * messages
    if failed:
        print(f"stress client: {len(failed)} of {clients} clients failed, first: {failed[0].exception!r}")
        return False
    print(
        f"stress client: {clients} clients x {messages} messages: all {total} echoes correct, "
        f"{echoed} bytes, in {elapsed:.2f} s ({total / elapsed:.0f} messages/s)",
        flush=True,
    )
    return True


def with_own_server(clients: int, messages: int) -> bool:
    """Start examples/echo_server.py --serve in another process, stress it, then stop it."""
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "echo server: listening on HOST:PORT ..."
        host, port = line.split("listening on ")[1].split()[0].rsplit(":", 1)
        print(f"stress client: started an echo server on {host}:{port}", flush=True)
        return stress((host, int(port)), clients, messages)
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", nargs="?", help="HOST:PORT of the echo server (default: start one)")
    parser.add_argument("--clients", type=int, default=200, help="clients at once (default 200)")
    parser.add_argument("--messages", type=int, default=20, help="messages per client (default 20)")
    args = parser.parse_args()
    if args.address is None:
        ok = with_own_server(args.clients, args.messages)
    else:
        host, port = args.address.rsplit(":", 1)
        ok = stress((host, int(port)), args.clients, args.messages)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
