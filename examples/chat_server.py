"""A line-based chat server on ``corun.server.StreamServer``: everyone hears what anyone says.

Each connection has two tasks: the handler reads the client's lines, and a
writer task sends it what others said, from its own queue. A client that
reads slowly only fills its own queue; the others are not held up by it.

A client first sends its name, then lines of text; ``/quit`` leaves.

By default the program demonstrates itself: three scripted clients (ann,
bob and cy) join, talk and leave, then each one's transcript is printed.

Run it:  python examples/chat_server.py   (the demo)
         python examples/chat_server.py --serve --port 8000   (until Ctrl-C; try: nc 127.0.0.1 8000)
"""

import argparse
from typing import Any

from corun.patches.socket import create_connection

import corun
from corun.queue import Queue
from corun.server import StreamServer


class ChatServer(StreamServer):
    """Relays each line a client sends to every other client."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.outboxes: dict[str, Queue[bytes | None]] = {}

    def broadcast(self, text: str, sender: str | None = None) -> None:
        """Queue ``text`` for everyone except ``sender`` (never waits)."""
        line = (text + "\n").encode()
        for name, outbox in self.outboxes.items():
            if name != sender:
                outbox.put_nowait(line)

    def handle(self, sock: Any, address: Any) -> None:
        reader = sock.makefile("rb")
        sock.sendall(b"welcome! your name?\n")
        name = reader.readline().decode(errors="replace").strip()
        if not name or name in self.outboxes:
            sock.sendall(b"that name is taken or empty; bye\n")
            return
        outbox: Queue[bytes | None] = Queue()
        writer = corun.spawn(send_from, outbox, sock)
        others = ", ".join(self.outboxes) or "nobody yet"
        self.outboxes[name] = outbox
        outbox.put_nowait(f"* hello {name}; here: {others}\n".encode())
        self.broadcast(f"* {name} joined", sender=name)
        try:
            for raw in reader:  # one line at a time, waiting in this task only
                text = raw.decode(errors="replace").rstrip("\r\n")
                if text == "/quit":
                    outbox.put_nowait(b"* bye\n")
                    break
                if text:
                    self.broadcast(f"[{name}] {text}", sender=name)
        finally:
            del self.outboxes[name]
            self.broadcast(f"* {name} left")
            outbox.put_nowait(None)  # the writer sends what is queued, then ends
            writer.join(timeout=5)
            reader.close()


def send_from(outbox: "Queue[bytes | None]", sock: Any) -> None:
    """Send the lines put in ``outbox`` until it yields None."""
    while (line := outbox.get()) is not None:
        sock.sendall(line)


# -- the demo: scripted clients ------------------------------------------------------


class Bot:
    """A scripted chat client: a task reads what the server sends into a queue."""

    def __init__(self, address: tuple[str, int], name: str) -> None:
        self.name = name
        self.sock = create_connection(address, timeout=5)
        self.lines: Queue[str] = Queue()
        self.transcript: list[str] = []
        self.reader = corun.spawn(self._read)

    def _read(self) -> None:
        with self.sock.makefile("rb") as stream:
            for raw in stream:
                self.lines.put(raw.decode().rstrip("\n"))

    def say(self, text: str) -> None:
        self.sock.sendall((text + "\n").encode())

    def expect(self, line: str) -> None:
        """Wait for the next line from the server, which must be ``line``."""
        got = self.lines.get(timeout=5)
        self.transcript.append(got)
        if got != line:
            raise AssertionError(f"{self.name} expected {line!r}, got {got!r}")

    def close(self) -> None:
        self.reader.join(timeout=5)  # the server hangs up after /quit
        self.sock.close()


def demo() -> None:
    server = ChatServer(("127.0.0.1", 0))
    server.start()
    host, port = server.address
    print(f"chat server: listening on {host}:{port}")
    ann, bob, cy = (Bot(server.address, name) for name in ("ann", "bob", "cy"))
    bots = (ann, bob, cy)

    for bot in bots:
        bot.expect("welcome! your name?")
    ann.say("ann")
    ann.expect("* hello ann; here: nobody yet")
    bob.say("bob")
    bob.expect("* hello bob; here: ann")
    ann.expect("* bob joined")
    cy.say("cy")
    cy.expect("* hello cy; here: ann, bob")
    for bot in (ann, bob):
        bot.expect("* cy joined")

    ann.say("hi all")
    for bot in (bob, cy):
        bot.expect("[ann] hi all")
    bob.say("hello ann")
    for bot in (ann, cy):
        bot.expect("[bob] hello ann")
    cy.say("/quit")
    cy.expect("* bye")
    for bot in (ann, bob):
        bot.expect("* cy left")
    bob.say("/quit")
    bob.expect("* bye")
    ann.expect("* bob left")
    ann.say("/quit")
    ann.expect("* bye")

    for bot in bots:
        bot.close()
        print(f"{bot.name} saw:")
        for line in bot.transcript:
            print(f"  {line}")
    server.stop()
    print(f"chat server: stopped; {len(server.outboxes)} clients left connected")


def serve(port: int) -> None:
    server = ChatServer(("127.0.0.1", port))
    server.start()
    host, port = server.address
    print(f"chat server: listening on {host}:{port} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("chat server: stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run the demo and exit (the default)")
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C instead of the demo")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: any free port)")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
    else:
        demo()


if __name__ == "__main__":
    main()
