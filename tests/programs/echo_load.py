"""A ``socketserver.ThreadingTCPServer`` echo server and 500 client threads in one process.

Each client connects, sends three messages and checks each echo; the server
pauses 0.2 s before every echo. After the clients, the server is shut down
and closed, and the process counts its open file descriptors and threads.

Usage: echo_load.py [clients]
"""

import json
import os
import socket
import socketserver
import sys
import threading
import time

CLIENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
MESSAGES = 3
PAUSE = 0.2


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.entered()
        try:
            while True:
                data = self.request.recv(1024)
                if not data:
                    return
                time.sleep(PAUSE)
                self.request.sendall(data)
        finally:
            self.server.left()


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 1024  # every client connects at once

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.guard = threading.Lock()
        self.connected = 0
        self.peak = 0
        self.now = 0

    def entered(self):
        with self.guard:
            self.connected += 1
            self.now += 1
            self.peak = max(self.peak, self.now)

    def left(self):
        with self.guard:
            self.now -= 1


def client(n, port, done):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for m in range(MESSAGES):
            message = f"client {n} message {m}\n".encode()
            sock.sendall(message)
            echoed = b""
            while len(echoed) < len(message):
                chunk = sock.recv(1024)
                if not chunk:
                    break
                echoed += chunk
            if echoed != message:
                return
    done.append(n)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def serve_and_load(clients):
    """Serve ``clients`` clients at once; return what happened."""
    server = EchoServer(("127.0.0.1", 0), EchoHandler)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serving.start()
    port = server.server_address[1]
    done = []
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n, port, done)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    stopping = time.perf_counter()
    server.shutdown()
    server.server_close()  # waits for the handler threads
    serving.join()
    return {
        "done": sorted(done) == list(range(clients)),
        "completed": len(done),
        "connected": server.connected,
        "peak": server.peak,
        "elapsed": elapsed,
        "shutdown": time.perf_counter() - stopping,
    }


serve_and_load(5)  # whatever is opened once per process is open before counting
fds_before = open_fds()
report = serve_and_load(CLIENTS)
report["fds_before"] = fds_before
report["fds_after"] = open_fds()
report["active_after"] = threading.active_count()
print(json.dumps(report))
