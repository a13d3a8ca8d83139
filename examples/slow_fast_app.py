"""A Flask application with a slow page and a fast one, written as if corun did not exist.

``/slow`` calls ``time.sleep`` (4 s, or ``SLOW_SECONDS`` from the
environment) the way a slow database query or API call would block;
``/fast`` answers at once; ``/pid`` names the process that answered.  Under
a corun server with patching, ``time.sleep`` only suspends the request's
own task, so ``/fast`` is answered while ``/slow`` is still sleeping.

Run as a program, it patches first, serves itself with ``corun.wsgi`` and
shows exactly that: it asks for ``/slow``, then ``/fast`` while ``/slow``
sleeps, prints when each was answered, and stops.  The same application
is served by gunicorn's corun worker and by ``python -m corun`` in
examples/slow_fast_demo.py.

Run it:  python examples/slow_fast_app.py   (the demo: one /slow and one /fast)
         python examples/slow_fast_app.py --serve --port 8000   (until Ctrl-C)
         gunicorn -k corun.gunicorn.Worker --chdir examples slow_fast_app:app
"""

if __name__ == "__main__":
    # First, before Flask and the stdlib modules it uses are imported.
    from corun import monkey

    monkey.patch_all()

import os
import time

from flask import Flask

SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "4"))

app = Flask(__name__)


@app.route("/slow")
def slow() -> str:
    time.sleep(SLOW_SECONDS)  # blocking code, as an ordinary application has
    return f"slow: slept {SLOW_SECONDS:g} s\n"


@app.route("/fast")
def fast() -> str:
    return "fast: answered at once\n"


@app.route("/pid")
def pid() -> str:
    return f"{os.getpid()}\n"


def demo() -> None:
    """Serve on a free port, ask for /slow and then /fast, and print when each was answered."""
    import http.client
    import threading

    from corun.wsgi import WSGIServer

    server = WSGIServer(("127.0.0.1", 0), app, access_log=None)
    server.start()
    port = server.server_port
    print(f"corun.wsgi under patch_all: serving on http://127.0.0.1:{port}")
    answered: dict[str, float] = {}
    started = time.monotonic()

    def get(path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        body = conn.getresponse().read().decode().strip()
        answered[path] = time.monotonic() - started
        print(f"  GET {path} -> {body!r} after {answered[path]:.2f} s")
        conn.close()

    # Threads are tasks once patched: both requests are in flight at once.
    slow_thread = threading.Thread(target=get, args=("/slow",))
    slow_thread.start()
    time.sleep(0.5)  # /slow is sleeping by now
    get("/fast")
    slow_thread.join()
    server.stop()
    verdict = "yes" if answered["/fast"] < answered["/slow"] else "no"
    print(f"  /fast answered while /slow was still sleeping: {verdict}")


def serve(port: int) -> None:
    """Serve the application with corun.wsgi until Ctrl-C."""
    from corun.wsgi import WSGIServer

    server = WSGIServer(("127.0.0.1", port), app)
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C instead of the demo")
    parser.add_argument("--port", type=int, default=8000, help="the port for --serve (0: a free one)")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
    else:
        demo()
