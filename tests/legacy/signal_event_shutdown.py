"""A service waiting on an Event that its SIGTERM handler sets; the signal comes from another process."""

import os
import signal
import subprocess
import threading

stop = threading.Event()


def on_term(signum, frame):
    stop.set()


signal.signal(signal.SIGTERM, on_term)
# The "supervisor" asks this process to stop a moment later.
supervisor = subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -TERM {os.getpid()}"])
print("stop requested:", stop.wait())
print("supervisor exit status:", supervisor.wait())
