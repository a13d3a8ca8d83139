"""corun's main job: unmodified blocking code, made concurrent.

The demo starts a local web server that takes 0.2 s to answer each page (a
slow backend), then fetches 50 pages from it three ways and prints the wall
time of each:

1. examples/legacy_crawler.py with plain python: ordinary blocking urllib
   code, one page after another, about 50 x 0.2 s = 10 s;
2. examples/crawl_with_tasks.py: ``monkey.patch_all()``, then the crawler's
   own unchanged ``fetch`` function in one corun task per page; the waits
   overlap, and the same pages arrive in a fraction of a second;
3. ``python -m corun legacy_crawler.py``: the unmodified crawler under the
   runner. It is still a sequential program, so it takes as long as (1), with
   the same output and exit status: patching alone changes nothing a program
   relies on; tasks are what make the waits overlap.
4. examples/legacy_threaded_crawler.py, which starts one thread per page,
   plainly and under the runner: the waits overlap both times, on one OS
   thread per page plainly and on a single OS thread under the runner, where
   each of its threads is a corun task.

Run it:  python examples/demo.py   (or: make demo)
         python examples/demo.py --pages 10 --delay 0.1   (a quicker run)
         python examples/demo.py --serve   (only the slow server, until Ctrl-C)
"""

import argparse
import re
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent


# -- the slow server -------------------------------------------------------------


def page(n: int) -> bytes:
    """The body of page ``n``: a little HTML whose length depends on ``n``."""
    paragraphs = "".join(f"<p>paragraph {i} of page {n}</p>\n" for i in range(20 + n % 13))
    return f"<html><body><h1>page {n}</h1>\n{paragraphs}</body></html>\n".encode()


class SlowPages(BaseHTTPRequestHandler):
    """Answers ``GET /page/<n>`` after ``delay`` seconds, like a busy backend."""

    delay = 0.2

    def do_GET(self) -> None:
        match = re.fullmatch(r"/page/(\d+)", self.path)
        if match is None:
            self.send_error(404)
            return
        time.sleep(self.delay)
        body = page(int(match.group(1)))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury the demo's output


class SlowServer(ThreadingHTTPServer):
    """One OS thread per connection, so the server itself never queues the crawler's requests."""

    daemon_threads = True
    request_queue_size = 128  # fifty connections may arrive at once


def serve(delay: float, port: int) -> None:
    """Run the slow server in this process until interrupted; first print its URL."""
    SlowPages.delay = delay
    with SlowServer(("127.0.0.1", port), SlowPages) as server:
        host, port = server.server_address[:2]
        print(f"serving on http://{host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    """Run the slow server in a child process; return the process and the server's URL."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--delay", str(delay)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("serving on "):
        server.kill()
        server.wait()
        sys.exit(f"the server did not start (it printed {line!r})")
    return server, line.split()[-1]


# -- the three runs --------------------------------------------------------------


def crawl(heading: str | None, command: list[str]) -> tuple[str, float, int, str]:
    """Run ``python <command>`` in examples/ and show its output.

    Returns:
        Its result line, its time, its exit status and all of its output.
    """
    if heading is not None:
        print(heading)
    print("   $ python " + " ".join(command), flush=True)
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=EXAMPLES)
    for line in proc.stdout.splitlines():
        print("   " + line)
    if proc.returncode != 0 or proc.stderr:
        sys.exit(f"python {' '.join(command)} failed with exit status {proc.returncode}:\n{proc.stderr}")
    result = next(line for line in proc.stdout.splitlines() if line.startswith("fetched "))
    took = re.search(r"^took ([\d.]+) s$", proc.stdout, re.MULTILINE)
    assert took is not None, proc.stdout
    print(flush=True)
    return result, float(took.group(1)), proc.returncode, proc.stdout


def os_threads(output: str) -> str:
    """How many OS threads the threaded crawler reported running on."""
    match = re.search(r"^\d+ threads ran on (\S+) OS thread", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50, help="pages to fetch (default 50)")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per answer (default 0.2)")
    parser.add_argument("--serve", action="store_true", help="only run the slow server")
    parser.add_argument("--port", type=int, default=0, help="with --serve: the port (default: any)")
    args = parser.parse_args()
    if args.serve:
        serve(args.delay, args.port)
        return

    server, url = start_server(args.delay)
    try:
        print(f"corun demo: an unmodified blocking crawler fetches {args.pages} pages from a local")
        print(f"server that takes {args.delay} s to answer each one ({url})")
        print()
        crawler = ["--pages", str(args.pages), url]
        plain, plain_time, plain_status, _ = crawl(
            "1. plain python: the legacy crawler, one page after another",
            ["legacy_crawler.py", *crawler],
        )
        tasks, tasks_time, _, _ = crawl(
            "2. monkey.patch_all(), then the crawler's own fetch() in one corun task per page",
            ["crawl_with_tasks.py", *crawler],
        )
        runner, _, runner_status, _ = crawl(
            "3. the unmodified crawler under the runner",
            ["-m", "corun", "legacy_crawler.py", *crawler],
        )
        threaded, threaded_time, _, threaded_out = crawl(
            "4. a legacy crawler that starts one thread per page, plainly and under the runner",
            ["legacy_threaded_crawler.py", *crawler],
        )
        as_tasks, as_tasks_time, _, as_tasks_out = crawl(
            None, ["-m", "corun", "legacy_threaded_crawler.py", *crawler]
        )
    finally:
        server.terminate()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()

    if any(run != plain for run in (tasks, runner, threaded, as_tasks)) or runner_status != plain_status:
        sys.exit("the runs did not fetch the same pages; see above")
    speed_up = plain_time / tasks_time
    print(f"all five runs {plain}")
    print(f"1 -> 2: {plain_time:.2f} s became {tasks_time:.2f} s, about {speed_up:.0f}x faster,")
    print("        on one thread, with the crawler's fetch() unchanged")
    print("3: unchanged: still one page after another, so as slow as 1; under the runner it")
    print(f"   printed the same result and exited with the same status ({runner_status}).")
    print("   Patching changes no behaviour; tasks are what overlap the waits.")
    plain_threads, runner_threads = os_threads(threaded_out), os_threads(as_tasks_out)
    print(f"4: threads overlap the waits plainly too: {threaded_time:.2f} s on {plain_threads} OS threads;")
    print(f"   under the runner the threads are tasks: {as_tasks_time:.2f} s on {runner_threads} OS thread.")


if __name__ == "__main__":
    main()
