"""A legacy crawler: plain blocking code that knows nothing about corun.

It fetches pages ``/page/0`` ... ``/page/N-1`` from a web server with
``urllib.request.urlopen``, one after another, and prints how many pages and
bytes it got, a digest of their contents, and how long it took. Nothing here
imports corun: examples/demo.py runs this file as it is, with plain python and
under ``python -m corun``, and examples/crawl_with_tasks.py reuses its
``fetch`` function unchanged, one corun task per page.

Run it against any server that answers ``/page/<n>``, e.g. the one
examples/demo.py starts (``python examples/demo.py --serve`` prints its URL):

    python examples/legacy_crawler.py http://127.0.0.1:8000
    python examples/legacy_crawler.py --pages 10 http://127.0.0.1:8000
"""

import argparse
import hashlib
import time
import urllib.request


def page_urls(base_url: str, pages: int) -> list[str]:
    """The addresses of the pages to fetch, in order."""
    return [f"{base_url.rstrip('/')}/page/{n}" for n in range(pages)]


def fetch(url: str) -> bytes:
    """Download one page; blocks until the whole body has arrived."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def report(bodies: list[bytes], seconds: float) -> None:
    """Print what was fetched (the same lines however the pages were fetched), then the time."""
    digest = hashlib.sha256(b"".join(bodies)).hexdigest()[:16]
    print(f"fetched {len(bodies)} pages, {sum(map(len, bodies))} bytes, sha256 {digest}")
    print(f"took {seconds:.2f} s")


def parse_args() -> argparse.Namespace:
    """The command line: the server's base URL and how many pages to fetch."""
    parser = argparse.ArgumentParser(description="Fetch numbered pages from a web server.")
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--pages", type=int, default=50, help="how many pages (default 50)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    bodies = []
    for url in page_urls(args.base_url, args.pages):
        bodies.append(fetch(url))
    report(bodies, time.perf_counter() - start)


if __name__ == "__main__":
    main()
