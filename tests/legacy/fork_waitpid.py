"""os.fork children reporting through pipes, reaped with os.waitpid (each pid, then any child)."""

import os
import sys
import time

children = {}
for n in range(5):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        time.sleep(0.1 * n)
        os.write(w, f"child {n} says {n * n}".encode())
        os.close(w)
        os._exit(n + 10)
    os.close(w)
    children[pid] = (n, r)

statuses = {}
for pid, (n, r) in children.items():
    message = b""
    while True:
        data = os.read(r, 1024)
        if not data:
            break
        message += data
    os.close(r)
    _, status = os.waitpid(pid, 0)
    statuses[n] = (message.decode(), os.WEXITSTATUS(status))
for n in sorted(statuses):
    print(n, statuses[n])

# Any child: os.wait() until none is left.
for n in range(3):
    if os.fork() == 0:
        time.sleep(0.2)
        os._exit(20 + n)
codes = []
while True:
    try:
        _, status = os.wait()
    except ChildProcessError:
        break
    codes.append(os.waitstatus_to_exitcode(status))
print("os.wait codes:", sorted(codes))
sys.stdout.flush()
