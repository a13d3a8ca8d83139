"""concurrent.futures.ThreadPoolExecutor: map, submit + as_completed, wait, a failing future."""

import concurrent.futures as cf
import time


def slow_square(n):
    time.sleep(0.1)
    return n * n


def fails(n):
    time.sleep(0.05)
    raise ValueError(f"bad input {n}")


with cf.ThreadPoolExecutor(max_workers=10) as pool:
    print("map:", list(pool.map(slow_square, range(30))))

    futures = {pool.submit(slow_square, n): n for n in range(20)}
    done = sorted((futures[f], f.result()) for f in cf.as_completed(futures, timeout=30))
    print("as_completed:", done[:4], "... total", len(done))

    bad = pool.submit(fails, 7)
    try:
        bad.result(timeout=30)
    except ValueError as exc:
        print("error:", exc)

    slow = pool.submit(time.sleep, 0.5)
    finished, pending = cf.wait([slow], timeout=0.05)
    print("wait with a short timeout:", len(finished), "done,", len(pending), "pending")
    finished, pending = cf.wait([slow], timeout=30)
    print("wait again:", len(finished), "done,", len(pending), "pending")
