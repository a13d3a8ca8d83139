"""os.pipe between a writer thread and a reader thread (os.read/os.write), and a pipe via os.fdopen."""

import hashlib
import os
import threading
import time

read_fd, write_fd = os.pipe()
CHUNK = b"0123456789abcdef" * 4096  # 64 KiB, as large as a pipe's buffer


def writer():
    for n in range(40):
        os.write(write_fd, CHUNK)
        if n % 10 == 0:
            time.sleep(0.05)
    os.close(write_fd)


digest = hashlib.sha256()
total = [0]


def reader():
    while True:
        data = os.read(read_fd, 65536)
        if not data:
            break
        total[0] += len(data)
        digest.update(data)
    os.close(read_fd)


threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("bytes through os.pipe:", total[0])
print("same bytes:", digest.hexdigest() == hashlib.sha256(CHUNK * 40).hexdigest())

r, w = os.pipe()
lines = []


def line_reader():
    with os.fdopen(r, "r") as f:
        for line in f:
            lines.append(line.strip())


t = threading.Thread(target=line_reader)
t.start()
with os.fdopen(w, "w") as f:
    for n in range(5):
        f.write(f"message {n}\n")
        f.flush()
        time.sleep(0.05)
t.join()
print("lines:", lines)
