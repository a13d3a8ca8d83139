"""threading.local, and contextvars in threads: a new thread starts in an empty context."""

import contextvars
import threading
import time

request_id = contextvars.ContextVar("request_id", default="none")
local = threading.local()
seen = {}


def handle(n):
    before = request_id.get()  # a thread does not inherit the starting thread's context
    request_id.set(f"req-{n}")
    local.user = f"user-{n}"
    time.sleep(0.05 * (3 - n % 3))  # interleave with the other threads
    seen[n] = (before, request_id.get(), local.user, hasattr(local, "other"))


local.user = "main-user"
local.other = True
request_id.set("main-request")
threads = [threading.Thread(target=handle, args=(n,)) for n in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(seen):
    print(n, seen[n])
print("main still has:", request_id.get(), local.user, local.other)

ctx = contextvars.copy_context()
result = []
t = threading.Thread(target=lambda: result.append(ctx.run(request_id.get)))
t.start()
t.join()
print("through an explicit context copy:", result)
