"""os.pipe between a writer thread and a reader thread, 2.5 MiB through os.write and os.read."""

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
