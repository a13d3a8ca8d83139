"""An echo server on ``corun.server.StreamServer``: one task per connection, on one thread.

Each connection gets its own task, which sends back every byte it receives
until the client hangs up. The handler is ordinary blocking socket code
(``recv``, ``sendall``); the server's socket is cooperative, so a waiting
``recv`` lets the other connections' tasks run.

By default the program demonstrates itself: it starts the server on a free
port, runs examples/echo_stress.py in a separate process against it (200
clients at once, 20 messages each), and stops once those 200 connections
have been served, printing what it saw.

Run it:  python examples/echo_server.py   (the demo)
         python examples/echo_server.py --clients 50   (a smaller demo)
         python examples/echo_server.py --serve --port 8000   (until Ctrl-C; try: nc 127.0.0.1 8000)
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import corun
from corun.server import StreamServer

EXAMPLES = Path(__file__).resolve().parent


class EchoServer(StreamServer):
    """Echoes every connection; with ``stop_after``, stops once that many connections have ended."""

    def __init__(self, address: tuple[str, int], stop_after: int | None = None) -> None:
        super().__init__(address)
        self.stop_after = stop_after
        self.served = 0  # connections that have ended
        self.running = 0  # connections being served right now
        self.most_at_once = 0
        self.bytes_echoed = 0

    def handle(self, sock: Any, address: Any) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            while True:
                data = sock.recv(65536)  # waits in this task only
                if not data:
                    break  # the client hung up
                sock.sendall(data)
                self.bytes_echoed += len(data)
        finally:
            self.running -= 1
            self.served += 1
        if self.stop_after is not None and self.served == self.stop_after:
            self.stop()  # stops accepting; the last connections finish first


def demo(clients: int, messages: int) -> int:
    """Serve ``clients`` connections from echo_stress.py in another process, then stop."""
    server = EchoServer(("127.0.0.1", 0), stop_after=clients)
    server.start()
    host, port = server.address
    print(f"echo server: listening on {host}:{port}", flush=True)
    stress = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "echo_stress.py"),
            f"{host}:{port}",
            "--clients",
            str(clients),
            "--messages",
            str(messages),
        ]
    )
    started = time.perf_counter()
    # Should the stress client fail before the last connection, stop anyway.
    watcher = corun.spawn(stop_when_done, stress, server)
    server.serve_forever()  # returns when the handler of the last client stops the server
    elapsed = time.perf_counter() - started
    status = watcher.get()
    print(
        f"echo server: served {server.served} connections in {elapsed:.2f} s, "
        f"at most {server.most_at_once} at once, {server.bytes_echoed} bytes echoed"
    )
    print(f"echo server: stopped (listener closed: {server.closed})")
    return status


def stop_when_done(process: "subprocess.Popen[bytes]", server: EchoServer) -> int:
    """Wait for ``process`` to exit (polling, so the server runs), stop the server; return the status."""
    while process.poll() is None:
        corun.sleep(0.02)
    if not server.closed:
        server.stop()
    return process.returncode


def serve(port: int) -> None:
    server = EchoServer(("127.0.0.1", port))
    server.start()
    host, port = server.address
    print(f"echo server: listening on {host}:{port} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print(f"echo server: stopped after {server.served} connections")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run the demo and exit (the default)")
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C instead of the demo")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: any free port)")
    parser.add_argument("--clients", type=int, default=200, help="demo: concurrent clients (default 200)")
    parser.add_argument("--messages", type=int, default=20, help="demo: messages per client (default 20)")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return 0
    return demo(args.clients, args.messages)


if __name__ == "__main__":
    sys.exit(main())
