"""A forked child's output read through os.fdopen on a pipe in main while a heartbeat thread keeps beating."""

import os
import threading
import time

read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_fd)
    time.sleep(0.5)
    os.write(write_fd, b"report from the child\n")
    os._exit(0)
os.close(write_fd)

beats = []
stop = threading.Event()


def heartbeat():
    while not stop.wait(0.05):
        beats.append(1)


beating = threading.Thread(target=heartbeat)
beating.start()
with os.fdopen(read_fd) as pipe:
    report = pipe.read()
stop.set()
beating.join()
os.waitpid(pid, 0)
print("report:", report.strip())
print("heartbeats while reading:", len(beats) >= 4)
