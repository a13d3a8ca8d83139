"""A select.select() event loop serving several clients on one listening socket, clients in threads."""

import select
import socket
import threading
import time

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]
CLIENTS = 8


def serve():
    """Echo each message with its length until every client has said goodbye."""
    sockets = [listener]
    goodbyes = 0
    while goodbyes < CLIENTS:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            raise SystemExit("the select loop heard nothing for 5 s")
        for sock in readable:
            if sock is listener:
                conn, _ = listener.accept()
                sockets.append(conn)
                continue
            data = sock.recv(1024)
            if not data:
                sockets.remove(sock)
                sock.close()
                goodbyes += 1
                continue
            sock.sendall(b"%d:%s" % (len(data), data))
    listener.close()


replies = {}


def client(n):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        got = []
        for k in range(3):
            time.sleep(0.05 * (n % 3))
            sock.sendall(f"c{n}m{k}".encode())
            got.append(sock.recv(1024).decode())
        replies[n] = got


server = threading.Thread(target=serve)
server.start()
clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
for t in clients:
    t.start()
for t in clients:
    t.join()
server.join()
for n in sorted(replies):
    print(n, replies[n])
