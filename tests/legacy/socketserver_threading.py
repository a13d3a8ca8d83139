"""socketserver.ThreadingTCPServer line-echo server with a thread per connection, and 12 client threads."""

import socket
import socketserver
import threading
import time


class UpperHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            time.sleep(0.12)  # a slow backend
            self.wfile.write(line.upper())


server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), UpperHandler)
server.daemon_threads = True
port = server.server_address[1]
serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
serving.start()

answers = {}


def client(n):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        got = []
        for k in range(5):
            sock.sendall(f"client {n} line {k}\n".encode())
            got.append(reader.readline().decode().strip())
        answers[n] = got


clients = [threading.Thread(target=client, args=(n,)) for n in range(12)]
for t in clients:
    t.start()
for t in clients:
    t.join()
server.shutdown()
server.server_close()
serving.join()

for n in sorted(answers):
    print(n, answers[n][0], "...", answers[n][-1])
print("all answered:", sorted(answers) == list(range(12)))
