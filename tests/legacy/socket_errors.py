"""Socket errors: connection refused, urlopen of a silent server timing out, a broken pipe, EBADF."""

import socket
import urllib.request

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
free_port = probe.getsockname()[1]
probe.close()
try:
    socket.create_connection(("127.0.0.1", free_port), timeout=5)
except OSError as exc:
    print("refused:", type(exc).__name__, exc.errno, exc)

silent = socket.socket()
silent.bind(("127.0.0.1", 0))
silent.listen()
try:
    urllib.request.urlopen(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.3)
except Exception as exc:
    print("urlopen:", type(exc).__name__, exc)
silent.close()

a, b = socket.socketpair()
b.close()
try:
    a.send(b"x")
    a.send(b"x")
except OSError as exc:
    print("peer gone:", type(exc).__name__, exc)
print("recv from a closed peer:", a.recv(10))
a.close()
try:
    a.recv(1)
except OSError as exc:
    print("closed:", type(exc).__name__, exc)
