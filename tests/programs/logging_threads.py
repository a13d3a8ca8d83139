"""Forty threads log through one handler whose ``emit`` writes each record in two halves.

The handler pauses between the halves, so another thread would get to run in
the middle of a record; logging's handler lock must keep the records whole.
"""

import json
import logging
import socket
import threading
import time

THREADS = 40
RECORDS = 10  # per thread


class SplitLineHandler(logging.Handler):
    """Sends each formatted record over a socket in two writes with a pause between."""

    def __init__(self, sock):
        super().__init__()
        self.sock = sock

    def emit(self, record):
        line = (self.format(record) + "\n").encode()
        half = len(line) // 2
        self.sock.sendall(line[:half])
        time.sleep(0.001)
        self.sock.sendall(line[half:])


def read_all(sock, chunks):
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        chunks.append(chunk)


def work():
    name = threading.current_thread().name
    log = logging.getLogger(f"app.{name}")
    for i in range(RECORDS):
        log.info("record %d of %s", i, name)


writer, reader = socket.socketpair()
chunks = []
reading = threading.Thread(target=read_all, args=(reader, chunks))
reading.start()

handler = SplitLineHandler(writer)
handler.setFormatter(logging.Formatter("%(threadName)s|%(name)s|%(message)s"))
app = logging.getLogger("app")
app.setLevel(logging.INFO)
app.addHandler(handler)

start = time.perf_counter()
threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.perf_counter() - start

app.removeHandler(handler)
handler.close()
writer.close()
reading.join()
reader.close()

lines = b"".join(chunks).decode().splitlines()
expected = [
    f"worker-{n}|app.worker-{n}|record {i} of worker-{n}" for n in range(THREADS) for i in range(RECORDS)
]
print(
    json.dumps(
        {
            "lines": len(lines),
            "whole": sorted(lines) == sorted(expected),
            "bad": [line for line in lines if line not in set(expected)][:5],
            "per_thread_in_order": all(
                [line for line in lines if line.startswith(f"worker-{n}|")]
                == [f"worker-{n}|app.worker-{n}|record {i} of worker-{n}" for i in range(RECORDS)]
                for n in range(THREADS)
            ),
            "elapsed": elapsed,
        }
    )
)
