"""PostgreSQL under corun, against a real server the tests start: psycopg2, psycopg 3 and pg8000.

Each program runs patched in a fresh interpreter and talks to the session's
server (``tests.services.postgres``) on 127.0.0.1.
"""

from __future__ import annotations

import textwrap

import pytest

from .conftest import run_json
from .services import Postgres, postgres

__all__ = ["postgres"]  # the fixture, imported for pytest to find

# How each driver connects to the server: the import and a connect() call
# taking the DSN.  Every connection is in autocommit mode.
DRIVERS = {
    "psycopg2": (
        "import psycopg2",
        "def connect(dsn):\n    conn = psycopg2.connect(dsn)\n    conn.autocommit = True\n    return conn\n",
    ),
    "psycopg": (
        "import psycopg",
        "def connect(dsn):\n    return psycopg.connect(dsn, autocommit=True)\n",
    ),
    "pg8000": (
        "import pg8000.dbapi",
        "def connect(dsn):\n"
        "    params = dict(item.split('=') for item in dsn.split())\n"
        "    conn = pg8000.dbapi.connect(user=params['user'], host=params['host'],\n"
        "                                port=int(params['port']), database=params['dbname'])\n"
        "    conn.autocommit = True\n"
        "    return conn\n",
    ),
}


def program(driver: str, body: str, *, import_first: bool = False) -> str:
    """A program importing ``driver`` after patching (before, with ``import_first``), running ``body``."""
    imports, connect = DRIVERS[driver]
    patch = "from corun import monkey; monkey.patch_all()\n"
    head = imports + "\n" + patch if import_first else patch + imports + "\n"
    return "import json, time\n" + head + "import corun\n" + connect + textwrap.dedent(body)


CONCURRENT_SLEEPS = """
dsn = {dsn!r}
ticks = [0]
def tick():
    while True:
        time.sleep(0.05)
        ticks[0] += 1
ticker = corun.spawn(tick)

def one(i):
    conn = connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_sleep(0.5), 1")
        return cur.fetchone()[1]
    finally:
        conn.close()

started = time.monotonic()
tasks = [corun.spawn(one, i) for i in range(20)]
corun.joinall(tasks, raise_error=True)
elapsed = time.monotonic() - started
ticker.kill()
print(json.dumps({{"elapsed": elapsed, "results": [t.value for t in tasks], "ticks": ticks[0]}}))
"""


@pytest.mark.parametrize(
    ("driver", "import_first"),
    [
        ("psycopg2", False),
        ("psycopg2", True),
        ("psycopg", False),
        ("psycopg", True),
        ("pg8000", False),
    ],
    ids=["psycopg2", "psycopg2-imported-first", "psycopg", "psycopg-imported-first", "pg8000"],
)
def test_twenty_queries_sleeping_half_a_second_run_at_once(
    postgres: Postgres, driver: str, import_first: bool
) -> None:
    source = program(driver, CONCURRENT_SLEEPS.format(dsn=postgres.dsn()), import_first=import_first)
    out = run_json(source)
    assert out["results"] == [1] * 20
    # One after another they take 10 s.
    assert out["elapsed"] < 2.5, out
    # And the hub ran other tasks meanwhile (a tick every 0.05 s).
    assert out["ticks"] >= 5, out


# A query interrupted by a corun.Timeout, then one by a kill, each watched from
# a second connection in pg_stat_activity: running while the task waits,
# gone from the server once the task was interrupted.
INTERRUPTED = """
dsn = {dsn!r}
monitor = connect(dsn)

def running(tag):
    cur = monitor.cursor()
    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%%' || %s || '%%' AND pid <> pg_backend_pid()", (tag,))
    return cur.fetchone()[0]

def gone_within(tag, seconds):
    deadline = time.monotonic() + seconds
    while running(tag):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

def after(conn):
    # What the connection does next: answer, or fail saying why.
    try:
        cur = conn.cursor()
        cur.execute("SELECT 42")
        return cur.fetchone()[0]
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc).strip()

res = {{}}
conn = connect(dsn)
def timed_out():
    try:
        with corun.Timeout(0.5):
            conn.cursor().execute("SELECT pg_sleep(30) /* timed-out */")
    except corun.Timeout:
        return "Timeout"
task = corun.spawn(timed_out)
time.sleep(0.3)
res["timeout: running before"] = running("timed-out")
res["timeout: raised"] = task.get()
res["timeout: gone"] = gone_within("timed-out", 3)
res["timeout: after"] = after(conn)

conn = connect(dsn)
task = corun.spawn(lambda: conn.cursor().execute("SELECT pg_sleep(30) /* killed */"))
time.sleep(0.3)
res["kill: running before"] = running("killed")
started = time.monotonic()
task.kill()
res["kill: took"] = time.monotonic() - started
res["kill: dead"] = task.dead
res["kill: gone"] = gone_within("killed", 3)
res["kill: after"] = after(conn)
print(json.dumps(res))
"""


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_a_timed_out_or_killed_query_is_cancelled_on_the_server(postgres: Postgres, driver: str) -> None:
    out = run_json(program(driver, INTERRUPTED.format(dsn=postgres.dsn())))
    for case in ("timeout", "kill"):
        assert out[f"{case}: running before"] == 1, out
        assert out[f"{case}: gone"] is True, out
    assert out["timeout: raised"] == "Timeout"
    assert out["kill: dead"] is True and out["kill: took"] < 3, out
    if driver == "psycopg2":
        # psycopg2 closes a connection whose wait callback raised.
        assert out["timeout: after"] == out["kill: after"] == "InterfaceError: connection already closed"
    else:
        assert out["timeout: after"] == out["kill: after"] == 42, out


# A listener that never answers: the kernel completes the TCP handshake and
# holds the startup packet, and no server ever replies.
SILENT_SERVER = """
import socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
dsn = "host=127.0.0.1 port=%d user=nobody dbname=nothing connect_timeout=2" % listener.getsockname()[1]
ticks = [0]
def tick():
    while True:
        time.sleep(0.05)
        ticks[0] += 1
ticker = corun.spawn(tick)
started = time.monotonic()
try:
    connect(dsn)
    error = None
except Exception as exc:
    error = type(exc).__name__ + ": " + str(exc).strip()
elapsed = time.monotonic() - started
print(json.dumps({"error": error, "elapsed": elapsed, "ticks": ticks[0]}))
"""


@pytest.mark.parametrize(
    ("driver", "error"),
    [
        ("psycopg2", "OperationalError: timeout expired"),
        ("psycopg", "ConnectionTimeout: connection timeout expired"),
    ],
)
def test_connect_timeout_is_honoured_against_a_server_that_never_answers(driver: str, error: str) -> None:
    out = run_json(program(driver, SILENT_SERVER))
    assert out["error"] == error, out
    assert 1.8 < out["elapsed"] < 4, out
    # The other tasks ran meanwhile.
    assert out["ticks"] >= 20, out


def test_patching_imports_no_driver_and_the_area_can_be_left_out() -> None:
    out = run_json(
        """
        import json, sys
        from corun import monkey
        monkey.patch_all(psycopg=False)
        import psycopg, psycopg2
        left_out = [psycopg2.extensions.get_wait_callback() is None,
                    psycopg.waiting.wait is psycopg.waiting.wait_c]
        monkey.patch_all()
        # Patched now, imported before: the drivers were imported by the program only.
        import corun.patches.psycopg as twin, corun.patches.psycopg2 as twin2
        patched = [psycopg2.extensions.get_wait_callback() is twin2.psycopg2_wait_callback,
                   psycopg.waiting.wait is twin.psycopg_wait,
                   monkey.get_original("psycopg.waiting", "wait") is psycopg.waiting.wait_c]
        print(json.dumps({"left out": left_out, "patched": patched}))
        """
    )
    assert out == {"left out": [True, True], "patched": [True, True, True]}
    out = run_json(
        """
        import json, sys
        from corun import monkey
        monkey.patch_all()
        imported = sorted(name for name in sys.modules if name.startswith(("psycopg", "pg8000")))
        # Imported after patching: patched then, and recorded as patching at once would have.
        import psycopg, psycopg2
        from corun.patches.psycopg import psycopg_wait
        recorded = [monkey.is_object_patched("psycopg.waiting", "wait"),
                    monkey.get_original("psycopg.waiting", "wait") is psycopg.waiting.wait_c,
                    psycopg.waiting.wait is psycopg_wait,
                    monkey.is_object_patched("psycopg.connection", "Connection.wait"),
                    monkey.is_object_patched("psycopg2.extensions", "wait_callback"),
                    monkey.get_original("psycopg2.extensions", "wait_callback") is None]
        print(json.dumps({"imported by patching": imported, "recorded": recorded}))
        """
    )
    assert out == {"imported by patching": [], "recorded": [True] * 6}


# Three tasks share one psycopg 3 connection, which serialises its commands
# with a lock taken from threading when psycopg was imported: with the
# original lock, the second task would block the whole thread.
SHARED_CONNECTION = """
import warnings
warnings.simplefilter("error")
import psycopg
from corun import monkey; monkey.patch_all()
import corun, json, threading, time
conn = psycopg.connect({dsn!r}, autocommit=True)
ticks = [0]
def tick():
    while True:
        time.sleep(0.05)
        ticks[0] += 1
ticker = corun.spawn(tick)
started = time.monotonic()
def one(i):
    return conn.execute("SELECT pg_sleep(0.3), %s", (i,)).fetchone()[1]
tasks = [corun.spawn(one, i) for i in range(3)]
corun.joinall(tasks, raise_error=True)
print(json.dumps({{"results": [t.value for t in tasks], "elapsed": time.monotonic() - started,
                  "ticks": ticks[0], "cooperative lock": type(conn.lock) is type(threading.Lock())}}))
"""


def test_psycopg_imported_before_patching_shares_a_connection_between_tasks(postgres: Postgres) -> None:
    out = run_json(SHARED_CONNECTION.format(dsn=postgres.dsn()))
    assert out["results"] == [0, 1, 2]
    assert out["cooperative lock"] is True
    # The queries run one after another on the one connection, while other tasks run.
    assert 0.85 < out["elapsed"] < 2.5, out
    assert out["ticks"] >= 10, out


def test_psycopg_in_a_transaction_a_timed_out_query_leaves_it_failed_until_rollback(
    postgres: Postgres,
) -> None:
    out = run_json(
        f"""
        from corun import monkey; monkey.patch_all()
        import corun, json, psycopg
        conn = psycopg.connect({postgres.dsn()!r})
        conn.execute("SELECT 1")
        try:
            with corun.Timeout(0.3):
                conn.execute("SELECT pg_sleep(30)")
        except corun.Timeout:
            pass
        status = conn.info.transaction_status.name
        try:
            conn.execute("SELECT 1")
        except psycopg.errors.InFailedSqlTransaction:
            refused = True
        conn.rollback()
        print(json.dumps({{"status": status, "refused": refused,
                           "after rollback": conn.execute("SELECT 42").fetchone()[0]}}))
        """
    )
    assert out == {"status": "INERROR", "refused": True, "after rollback": 42}
