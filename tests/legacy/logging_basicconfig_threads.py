"""logging.basicConfig to stderr from many threads with %(threadName)s, records in one order."""

import logging
import threading
import time

logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(threadName)s:%(message)s")
log = logging.getLogger(__name__)


# Each job logs after the one before it, so that the records come in one order
# however the machine schedules the threads; their waits all overlap.
logged = [threading.Event() for _ in range(12)]


def job(n):
    time.sleep(0.3)
    if n:
        logged[n - 1].wait()
    log.info("finished %d", n)
    logged[n].set()


# Names given explicitly: "Thread-N" numbering is process-wide and stays out of the output.
threads = [threading.Thread(target=job, args=(n,), name=f"job{n:02d}") for n in range(12)]
for t in threads:
    log.info("starting %s", t.name)
    t.start()
for t in threads:
    t.join()
log.warning("done with %d jobs", len(threads))
print("ok")
