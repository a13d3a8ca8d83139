"""Three hundred threads each sleeping 0.5 s (a thread per request): they all overlap."""

import threading
import time

finished = []
go = threading.Event()


def handle(n):
    go.wait()  # all started first, however long starting them takes on a busy machine
    time.sleep(0.5)
    finished.append(n)


threads = [threading.Thread(target=handle, args=(n,)) for n in range(300)]
for t in threads:
    t.start()
peak = threading.active_count()
go.set()
for t in threads:
    t.join()
print("finished:", len(finished), "distinct:", len(set(finished)))
print("active while sleeping:", peak, "after:", threading.active_count())
