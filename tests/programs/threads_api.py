"""What threads can see of each other: Barrier, local, names, enumerate, idents, join(timeout)."""

import json
import threading
import time

report = {}

# -- Barrier: nobody passes before all five have arrived --------------------------
PARTIES = 5
barrier = threading.Barrier(PARTIES)
events = []
indices = []


def stage(n):
    time.sleep(0.02 * n)  # arrive one after another
    events.append("arrive")
    indices.append(barrier.wait(timeout=10))
    events.append("leave")


threads = [threading.Thread(target=stage, args=(n,)) for n in range(PARTIES)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
report["barrier_events"] = events
report["barrier_indices"] = sorted(indices)
report["barrier_broken"] = barrier.broken

# -- threading.local: one value per thread ----------------------------------------


class Tally(threading.local):
    def __init__(self):
        self.count = 0


data = threading.local()
data.value = "main"
tally = Tally()
tally.count = 100
seen = {}


def own(n):
    fresh = (getattr(data, "value", None), tally.count)
    data.value = n
    for _ in range(n + 1):
        tally.count += 1
    time.sleep(0.01)  # the others set theirs meanwhile
    seen[n] = {"fresh": fresh, "value": data.value, "count": tally.count}


threads = [threading.Thread(target=own, args=(n,)) for n in range(5)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
report["local_seen"] = [seen[n] for n in range(5)]
report["local_main"] = [data.value, tally.count]

# -- names, identity, enumerate, join(timeout) -------------------------------------
release = threading.Event()
inside = {}


def named():
    me = threading.current_thread()
    inside[me.name] = {"is_self": me is by_name[me.name], "ident": threading.get_ident()}
    release.wait()


by_name = {name: threading.Thread(target=named, name=name) for name in ("alpha", "beta", "gamma")}
for thread in by_name.values():
    thread.start()
while len(inside) < len(by_name):  # until each has looked at itself
    time.sleep(0.01)

report["main_name"] = threading.current_thread().name
report["main_is_main"] = threading.current_thread() is threading.main_thread()
report["enumerate_running"] = sorted(thread.name for thread in threading.enumerate())
report["active_running"] = threading.active_count()
report["inside"] = inside
report["idents_match"] = all(by_name[name].ident == info["ident"] for name, info in inside.items())
idents = [info["ident"] for info in inside.values()] + [threading.get_ident()]
report["idents_distinct"] = len(set(idents)) == len(idents)

start = time.perf_counter()
by_name["alpha"].join(timeout=0.2)
report["join_timeout_waited"] = time.perf_counter() - start
report["alive_after_join_timeout"] = by_name["alpha"].is_alive()

release.set()
for thread in by_name.values():
    thread.join()
report["alive_after_join"] = [thread.is_alive() for thread in by_name.values()]
report["enumerate_after"] = sorted(thread.name for thread in threading.enumerate())

print(json.dumps(report))
