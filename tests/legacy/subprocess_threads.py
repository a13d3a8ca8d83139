"""Eight threads each running subprocess.run (sh, sleep), and a thread streaming a child's stdout."""

import subprocess
import sys
import threading

codes = {}


def run_child(n):
    codes[n] = subprocess.run(["sh", "-c", f"sleep 0.8; exit {n}"]).returncode


lines = []


def stream():
    with subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-c",
            "import time\nfor i in range(5):\n    print('tick', i)\n    time.sleep(0.1)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        for line in proc.stdout:
            lines.append(line.strip())
    lines.append(f"exit {proc.returncode}")


threads = [threading.Thread(target=run_child, args=(n,)) for n in range(8)]
threads.append(threading.Thread(target=stream))
for t in threads:
    t.start()
for t in threads:
    t.join()
print("exit codes:", [codes[n] for n in sorted(codes)])
print("streamed:", lines)
