"""multiprocessing Pool with fork: map, imap_unordered, apply_async and a worker's exception."""

import multiprocessing
import time


def slow_cube(n):
    time.sleep(0.05)
    return n**3


def boom(n):
    raise ValueError(f"cannot handle {n}")


if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        print("map:", pool.map(slow_cube, range(16)))
        print("imap_unordered:", sorted(pool.imap_unordered(slow_cube, range(8))))
        pending = [pool.apply_async(slow_cube, (n,)) for n in range(4)]
        print("apply_async:", [p.get(timeout=30) for p in pending])
        try:
            pool.apply(boom, (3,))
        except ValueError as exc:
            print("error:", exc)
    pool.join()
