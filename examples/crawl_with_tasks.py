"""Patch, then spawn: the legacy crawler's own blocking ``fetch``, one corun task per page.

examples/legacy_crawler.py downloads its pages one after another with
``urllib.request.urlopen``. This driver changes none of that code. It calls
``monkey.patch_all()`` first, so the sockets urllib opens wait cooperatively,
then runs the unchanged ``fetch`` function in one task per page: while one
task waits for its server, the others send their requests. Same pages, same
bytes, same digest; the waits overlap instead of adding up.

Run it against the server examples/demo.py starts (``python examples/demo.py
--serve`` prints its URL):

    python examples/crawl_with_tasks.py http://127.0.0.1:8000
"""

from corun import monkey

monkey.patch_all()  # first: before anything below imports socket or urllib

import time  # noqa: E402

from legacy_crawler import fetch, page_urls, parse_args, report  # noqa: E402

import corun  # noqa: E402


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    tasks = [corun.spawn(fetch, url) for url in page_urls(args.base_url, args.pages)]
    corun.joinall(tasks, raise_error=True)
    report([task.get() for task in tasks], time.perf_counter() - start)


if __name__ == "__main__":
    main()
