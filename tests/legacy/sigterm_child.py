"""Popen children stopped by terminate() (the child's SIGTERM handler exits) and kill()."""

import signal
import subprocess
import sys

CHILD = """
import signal, sys, time
def on_term(signum, frame):
    print("child: cleaning up", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("child: ready", flush=True)
time.sleep(30)
"""

graceful = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
print(graceful.stdout.readline().strip())
graceful.terminate()
print(graceful.stdout.read().strip())
print("graceful exit:", graceful.wait(timeout=10))

stubborn = subprocess.Popen(["sleep", "30"])
try:
    stubborn.wait(timeout=0.8)
except subprocess.TimeoutExpired:
    print("still running after 0.8 s")
stubborn.kill()
print("killed:", stubborn.wait(timeout=10) == -signal.SIGKILL)
print("poll after exit:", stubborn.poll() == -signal.SIGKILL)
