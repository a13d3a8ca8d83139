"""Ten threads each running os.system("sleep 0.3"): the shell waits overlap, and each status is 0."""

import os
import threading

statuses = {}


def run(n):
    statuses[n] = os.system("sleep 0.3")


threads = [threading.Thread(target=run, args=(n,)) for n in range(10)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("statuses:", [statuses[n] for n in sorted(statuses)])
print("failed status:", os.waitstatus_to_exitcode(os.system("exit 3")))
