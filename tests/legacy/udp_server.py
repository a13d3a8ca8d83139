"""socketserver.ThreadingUDPServer, clients in threads with recvfrom timeouts; one request unanswered."""

import socket
import socketserver
import threading


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        if data != b"drop me":
            sock.sendto(data.upper(), self.client_address)


server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
address = server.server_address
threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
answers = {}


def client(n):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.8 if n == 3 else 10)
        message = b"drop me" if n == 3 else f"datagram {n}".encode()
        sock.sendto(message, address)
        try:
            answers[n] = sock.recvfrom(1024)[0].decode()
        except socket.timeout:
            answers[n] = "no answer"


threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(answers):
    print(n, answers[n])
server.shutdown()
server.server_close()
