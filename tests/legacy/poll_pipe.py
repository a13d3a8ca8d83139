"""select.poll on pipes written by threads, and select.select([], [], [], t) used as a sleep."""

import os
import select
import threading
import time

pipes = [os.pipe() for _ in range(4)]


def writer(n, fd):
    for k in range(3):
        time.sleep(0.05 * (n + 1))
        os.write(fd, bytes([65 + n]))
    os.close(fd)


poller = select.poll()
fd_to_n = {}
for n, (r, w) in enumerate(pipes):
    poller.register(r, select.POLLIN)
    fd_to_n[r] = n
    threading.Thread(target=writer, args=(n, w)).start()

received = {n: b"" for n in range(4)}
open_fds = set(fd_to_n)
empty_polls = 0
while open_fds:
    events = poller.poll(5000)
    if not events:
        empty_polls += 1
        break
    for fd, _ in events:
        data = os.read(fd, 100)
        if data:
            received[fd_to_n[fd]] += data
        else:
            poller.unregister(fd)
            os.close(fd)
            open_fds.discard(fd)
print("received:", {n: data.decode() for n, data in received.items()})
print("empty polls:", empty_polls)

start = time.monotonic()
select.select([], [], [], 0.3)
print("select as a sleep waited:", time.monotonic() - start >= 0.29)
