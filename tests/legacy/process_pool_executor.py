"""concurrent.futures.ProcessPoolExecutor: map with chunks, submit, and a worker's exception."""

import concurrent.futures as cf


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fails():
    raise ArithmeticError("worker failed")


if __name__ == "__main__":
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        print("map:", list(pool.map(fib, range(20), chunksize=4)))
        futures = [pool.submit(fib, n) for n in (15, 16, 17)]
        print("submit:", [f.result(timeout=30) for f in futures])
        try:
            pool.submit(fails).result(timeout=30)
        except ArithmeticError as exc:
            print("error:", exc)
