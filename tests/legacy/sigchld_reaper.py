"""A SIGCHLD handler reaping forked children with os.waitpid(-1, WNOHANG), the pre-fork server idiom."""

import os
import signal
import time

reaped = {}


def reap(signum, frame):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reaped[pid] = os.waitstatus_to_exitcode(status)


signal.signal(signal.SIGCHLD, reap)
pids = {}
for n in range(6):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.05 * n)
        os._exit(n)
    pids[pid] = n

deadline = time.monotonic() + 20
while len(reaped) < len(pids) and time.monotonic() < deadline:
    time.sleep(0.05)
print("reaped:", sorted(reaped.values()))
print("every child by its pid:", all(reaped.get(pid) == n for pid, n in pids.items()))
