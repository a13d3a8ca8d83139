"""selectors.DefaultSelector with callbacks in data (the asyncore style), over socketpairs fed by threads."""

import selectors
import socket
import threading
import time

sel = selectors.DefaultSelector()
totals = {}
open_count = [0]


def on_readable(sock, name):
    data = sock.recv(4096)
    if not data:
        sel.unregister(sock)
        sock.close()
        open_count[0] -= 1
        return
    totals[name] = totals.get(name, 0) + sum(data)


def feeder(sock, n):
    for k in range(20):
        sock.sendall(bytes([n, k]))
        time.sleep(0.01)
    sock.close()


feeders = []
for n in range(6):
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    sel.register(ours, selectors.EVENT_READ, (on_readable, f"pair-{n}"))
    open_count[0] += 1
    feeders.append(threading.Thread(target=feeder, args=(theirs, n)))
for t in feeders:
    t.start()

rounds = 0
while open_count[0]:
    events = sel.select(timeout=5)
    if not events:
        raise SystemExit("nothing ready for 5 s")
    rounds += 1
    for key, _ in events:
        callback, name = key.data
        callback(key.fileobj, name)
for t in feeders:
    t.join()
sel.close()
print("totals:", sorted(totals.items()))
print("more than one select round:", rounds > 1)
