"""Popen with stdin and stdout pipes fed by a writer thread and drained by a reader thread."""

import subprocess
import sys
import threading

child = subprocess.Popen(
    [
        sys.executable,
        "-c",
        "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line.rstrip(chr(10))[::-1] + chr(10))",
    ],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    bufsize=0,
)
LINES = 20000


def writer():
    for n in range(LINES):
        child.stdin.write(b"line number %d\n" % n)
    child.stdin.close()


received = []


def reader():
    for line in child.stdout:
        received.append(line)


threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("exit:", child.wait(timeout=30))
print("lines back:", len(received))
print("first and last:", received[0], received[-1])
