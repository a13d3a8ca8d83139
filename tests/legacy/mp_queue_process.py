"""multiprocessing Process + Queue (the default start method): results back, exit codes checked."""

import multiprocessing
import time


def worker(n, results):
    time.sleep(0.1)
    results.put((n, sum(range(n * 1000))))


def failing():
    raise SystemExit(4)


if __name__ == "__main__":
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(n, results)) for n in range(5)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=30) for _ in procs)
    for p in procs:
        p.join()
    print("results:", got)
    print("exit codes:", [p.exitcode for p in procs])
    p = multiprocessing.Process(target=failing)
    p.start()
    p.join()
    print("failing exit code:", p.exitcode)
