"""multiprocessing with spawn: a Pool, and a Process with a Queue; each child a fresh interpreter."""

import multiprocessing


def square(n):
    return n * n


def report(q):
    q.put("hello from a spawned child")


if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        print("map:", pool.map(square, range(10)))
    q = ctx.Queue()
    p = ctx.Process(target=report, args=(q,))
    p.start()
    print(q.get(timeout=30))
    p.join()
    print("exit code:", p.exitcode)
