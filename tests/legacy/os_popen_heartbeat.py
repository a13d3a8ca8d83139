"""os.popen reading a slow shell command's output in main while a heartbeat thread keeps beating."""

import os
import threading

beats = []
stop = threading.Event()


def heartbeat():
    while not stop.wait(0.05):
        beats.append(1)


beating = threading.Thread(target=heartbeat)
beating.start()
with os.popen("sleep 0.5; echo done; echo twice") as pipe:
    output = pipe.read()
stop.set()
beating.join()
print("output:", output.split())
print("heartbeats while reading:", len(beats) >= 4)
print("exit status:", os.popen("exit 2").close())
