"""socket timeouts: gettimeout() and the .timeout attribute, setdefaulttimeout, recv's socket.timeout."""

import socket

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print("listener gettimeout:", listener.gettimeout(), "timeout attribute:", listener.timeout)

client = socket.create_connection(listener.getsockname(), timeout=2.5)
print("client gettimeout:", client.gettimeout(), "timeout attribute:", client.timeout)
server_side, _ = listener.accept()
server_side.settimeout(0.3)
print("accepted gettimeout:", server_side.gettimeout(), "timeout attribute:", server_side.timeout)
try:
    server_side.recv(10)
except socket.timeout as exc:
    print("recv timed out:", type(exc).__name__, exc)

client.setblocking(False)
print("non-blocking:", client.gettimeout(), client.timeout, client.getblocking())
client.setblocking(True)
print("blocking:", client.gettimeout(), client.timeout, client.getblocking())

socket.setdefaulttimeout(4.0)
fresh = socket.socket()
print("default timeout applies:", fresh.gettimeout(), fresh.timeout)
socket.setdefaulttimeout(None)
for s in (fresh, client, server_side, listener):
    s.close()
