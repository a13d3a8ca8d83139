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


@pytest.mark.parametrize("driver", ["pg8000"])
def test_twenty_queries_sleeping_half_a_second_run_at_once(postgres: Postgres, driver: str) -> None:
    out = run_json(program(driver, CONCURRENT_SLEEPS.format(dsn=postgres.dsn())))
    assert out["results"] == [1] * 20
    # One after another they take 10 s.
    assert out["elapsed"] < 2.5, out
    # And the hub ran other tasks meanwhile (a tick every 0.05 s).
    assert out["ticks"] >= 5, out
