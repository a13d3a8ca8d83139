"""multiprocessing with the forkserver start method: a Pool's map and a Process's exit code."""

import multiprocessing
import sys


def shout(word):
    return word.upper()


def leave(code):
    sys.exit(code)


if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(2) as pool:
        print("map:", pool.map(shout, ["fork", "server", "pool"]))
    p = ctx.Process(target=leave, args=(6,))
    p.start()
    p.join()
    print("exit code:", p.exitcode)
