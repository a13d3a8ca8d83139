"""A hand-written accept loop starting a thread per client (no socketserver), stopped by a QUIT connection."""

import socket
import threading
import time

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(50)
port = listener.getsockname()[1]
handled = []


def handle_client(conn):
    with conn:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(100)
            if not chunk:
                return
            data += chunk
        time.sleep(0.1)
        conn.sendall(b"sum=%d\n" % sum(int(x) for x in data.split()))
        handled.append(1)


def accept_loop():
    workers = []
    while True:
        conn, _ = listener.accept()
        first = conn.recv(4, socket.MSG_PEEK)
        if first == b"QUIT":
            conn.close()
            break
        t = threading.Thread(target=handle_client, args=(conn,))
        t.start()
        workers.append(t)
    for t in workers:
        t.join()
    listener.close()


acceptor = threading.Thread(target=accept_loop)
acceptor.start()
replies = {}


def client(n):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(" ".join(str(k) for k in range(n + 1)).encode())
    time.sleep(0.02)
    sock.sendall(b"\n")
    replies[n] = sock.makefile().readline().strip()
    sock.close()


clients = [threading.Thread(target=client, args=(n,)) for n in range(20)]
for t in clients:
    t.start()
for t in clients:
    t.join()
with socket.create_connection(("127.0.0.1", port)) as quit_sock:
    quit_sock.sendall(b"QUIT")
acceptor.join()
print("replies:", [replies[n] for n in sorted(replies)][:4], "...", replies[19])
print("handled:", len(handled))
