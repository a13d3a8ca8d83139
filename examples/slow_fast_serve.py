"""Serves the slow/fast Flask application with ``WSGIServer(...).serve_forever()``; run it under corun.

The script itself never patches anything: it is meant to be started by
corun's runner, which patches the standard library first and then runs the
script as ``python`` would.  The application's ``time.sleep`` then suspends
only its own request, and ``/fast`` is answered while ``/slow`` sleeps.
examples/slow_fast_demo.py starts it this way and checks exactly that.

Started with plain ``python``, nothing is patched and one sleeping ``/slow``
would hold up every other request, so it says how to start it and exits.

Run it:  python -m corun examples/slow_fast_serve.py --port 8000   (until Ctrl-C)
         python examples/slow_fast_serve.py   (explains how to run it)
"""

import argparse
import signal
import sys
import time
from pathlib import Path

from corun.monkey import is_object_patched
from corun.wsgi import WSGIServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slow_fast_app import app  # found next to this script


def stop_serving(signum: int, frame: object) -> None:
    """Leave serve_forever(), which stops the server on its way out."""
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the port to serve on (0: a free one)")
    args = parser.parse_args()
    if not is_object_patched("time", "sleep"):
        print("time.sleep is not patched here: /slow would hold up /fast.")
        print("Run this script under corun instead:  python -m corun examples/slow_fast_serve.py")
        return
    server = WSGIServer(("127.0.0.1", args.port), app)
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port} (time.sleep patched: yes)", flush=True)
    started = time.monotonic()
    # SIGTERM (a service manager, or the demo) stops it like Ctrl-C does.
    signal.signal(signal.SIGTERM, stop_serving)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    print(f"stopped after {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
