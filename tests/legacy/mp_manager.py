"""multiprocessing.Manager: a shared dict and list updated by forked worker processes."""

import multiprocessing


def work(n, shared, log):
    shared[n] = n * 10
    log.append(n)


if __name__ == "__main__":
    with multiprocessing.Manager() as manager:
        shared = manager.dict()
        log = manager.list()
        procs = [multiprocessing.Process(target=work, args=(n, shared, log)) for n in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print("dict:", sorted(shared.items()))
        print("list:", sorted(log))
