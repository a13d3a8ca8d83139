"""logging from threads through a QueueHandler to a QueueListener (and stdout), records kept whole."""

import logging
import logging.handlers
import queue
import sys
import threading
import time

records = queue.Queue()
collected = []


class Collect(logging.Handler):
    def emit(self, record):
        collected.append(self.format(record))


collect = Collect()
collect.setFormatter(logging.Formatter("%(levelname)s %(threadName)s %(message)s"))
console = logging.StreamHandler(sys.stdout)
console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
console.addFilter(lambda record: record.levelno >= logging.WARNING)
listener = logging.handlers.QueueListener(records, collect, console, respect_handler_level=True)

log = logging.getLogger("app")
log.setLevel(logging.DEBUG)
log.addHandler(logging.handlers.QueueHandler(records))
log.propagate = False
listener.start()


def work(n):
    for k in range(20):
        log.debug("worker %d step %d", n, k)
        if k % 5 == 0:
            time.sleep(0.02)
    if n == 3:
        log.warning("worker %d saw something odd", n)


threads = [threading.Thread(target=work, args=(n,), name=f"worker-{n}") for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
log.info("all workers finished")
listener.stop()

print("records:", len(collected))
print("per worker:", sorted({line.split()[1] for line in collected if "worker-" in line.split()[1]}))
in_order = all(
    [int(line.split()[-1]) for line in collected if line.startswith(f"DEBUG worker-{n} ")] == list(range(20))
    for n in range(8)
)
print("each worker's records in order:", in_order)
print("last:", collected[-1])
