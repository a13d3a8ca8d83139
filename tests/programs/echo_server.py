"""A ``socketserver.ThreadingTCPServer`` echo server that stops when a client sends "shutdown".

It prints its port, echoes each message after 0.2 s, and when it has stopped
prints how many connections it served and the most it held at once.
"""

import json
import socketserver
import threading
import time

PAUSE = 0.2


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.server.entered()
        try:
            for line in self.rfile:
                if line == b"shutdown\n":
                    self.server.shutdown()
                    return
                time.sleep(PAUSE)
                self.wfile.write(line)
        finally:
            self.server.left()


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 1024

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


with EchoServer(("127.0.0.1", 0), EchoHandler) as server:
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)
print(json.dumps({"connected": server.connected, "peak": server.peak, "threads": threading.active_count()}))
