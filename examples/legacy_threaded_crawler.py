"""A legacy threaded crawler: one ``threading.Thread`` per page, plain blocking code.

It fetches the same pages as examples/legacy_crawler.py, with the same
``fetch`` (``urllib.request.urlopen``), but starts a thread for each page, so
the waits overlap even in plain Python, on as many OS threads as pages.
Nothing here imports corun. Under ``python -m corun`` the program is
unchanged and its threads are corun tasks: the same pages arrive in the same
time on one OS thread. It prints what it fetched, the time, and how many OS
threads the process had while every page was in flight (read from
/proc/self/status, so only on Linux).

Run it against the server examples/demo.py starts (``python examples/demo.py
--serve`` prints its URL):

    python examples/legacy_threaded_crawler.py http://127.0.0.1:8000
    python -m corun examples/legacy_threaded_crawler.py http://127.0.0.1:8000
"""

import threading
import time

from legacy_crawler import fetch, page_urls, parse_args, report


def os_threads() -> str:
    """The OS threads of this process, as the kernel counts them, or '?' where it does not say."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


def main() -> None:
    args = parse_args()
    urls = page_urls(args.base_url, args.pages)
    bodies: list[bytes] = [b""] * len(urls)

    def fetch_into(i: int) -> None:
        bodies[i] = fetch(urls[i])

    start = time.perf_counter()
    threads = [threading.Thread(target=fetch_into, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    in_flight = os_threads()  # every thread has started and waits for its page
    for thread in threads:
        thread.join()
    report(bodies, time.perf_counter() - start)
    print(f"{len(threads)} threads ran on {in_flight} OS thread{'' if in_flight == '1' else 's'}")


if __name__ == "__main__":
    main()
