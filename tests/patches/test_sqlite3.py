"""The sqlite3 twin: ``check_same_thread`` holds between the program's threads, as with OS threads.

Each program runs plainly and patched, in fresh interpreters, and must print
the same: the stdlib's behaviour on OS threads is the reference.
"""

from __future__ import annotations

import textwrap

import pytest

from ..conftest import run_json

PLAIN = "from corun import monkey\n"
ALL = "from corun import monkey; monkey.patch_all()\n"

USES = """
import json, sqlite3, threading

def in_thread(func, *args):
    box = []
    def run():
        try:
            box.append(["ok", func(*args)])
        except sqlite3.ProgrammingError as exc:
            box.append(["ProgrammingError", str(exc).split(".")[0]])
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return box[0]

class Named(sqlite3.Connection):
    def hello(self):
        return "hello"

class Rows(sqlite3.Cursor):
    pass

res = {}
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
cur = conn.cursor()
cur.execute("INSERT INTO t VALUES (1)")
res["execute"] = in_thread(conn.execute, "INSERT INTO t VALUES (2)")
res["cursor"] = in_thread(conn.cursor)
res["cursor use"] = in_thread(cur.execute, "SELECT 1")
res["fetch"] = in_thread(cur.fetchall)
res["commit"] = in_thread(conn.commit)
res["with"] = in_thread(conn.__exit__, None, None, None)
res["close"] = in_thread(conn.close)
res["rows in owner"] = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]

free = sqlite3.connect(":memory:", check_same_thread=False)
res["unchecked"] = in_thread(lambda: free.execute("SELECT 41 + 1").fetchone()[0])

made_there = in_thread(lambda: sqlite3.connect(":memory:"))[1]
try:
    made_there.execute("SELECT 1")
    res["made in a thread"] = "ok"
except sqlite3.ProgrammingError as exc:
    res["made in a thread"] = str(exc).split(".")[0]

named = sqlite3.connect(":memory:", 5.0, 0, "", True, Named)
res["factory"] = [isinstance(named, Named), named.hello(), type(named).__name__]
rows = named.cursor(Rows)
res["cursor factory"] = [isinstance(rows, Rows), type(rows).__name__, in_thread(rows.execute, "SELECT 1")]
res["named in thread"] = in_thread(named.execute, "SELECT 1")
print(json.dumps(res))
"""


def test_a_connection_keeps_to_the_thread_that_made_it_as_plainly() -> None:
    plain = run_json(PLAIN + USES)
    patched = run_json(ALL + USES)
    assert patched == plain
    # What the stdlib does, so that the comparison above means something.
    refused = ["ProgrammingError", "SQLite objects created in a thread can only be used in that same thread"]
    for key in ("execute", "cursor", "cursor use", "fetch", "commit", "with", "close", "named in thread"):
        assert patched[key] == refused, key
    assert patched["rows in owner"] == 1
    assert patched["unchecked"] == ["ok", 42]
    assert patched["made in a thread"] == refused[1]
    assert patched["factory"] == [True, "hello", "Named"]
    assert patched["cursor factory"] == [True, "Rows", refused]


@pytest.mark.parametrize("prologue", [PLAIN, ALL], ids=["plain", "patch_all"])
def test_tasks_share_a_connection_as_green_threads_do(prologue: str) -> None:
    # Tasks started with corun.spawn are no threads of the program's: a
    # program written for green threads shares one connection among them.
    out = run_json(
        prologue
        + textwrap.dedent(
            """
            import json, sqlite3
            import corun
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE TABLE t (x)")
            def insert(n):
                conn.execute("INSERT INTO t VALUES (?)", (n,))
                corun.sleep(0.01)
                return conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] >= 1
            tasks = [corun.spawn(insert, n) for n in range(5)]
            corun.joinall(tasks, raise_error=True)
            print(json.dumps([[t.value for t in tasks], conn.execute("SELECT SUM(x) FROM t").fetchone()[0]]))
            """
        )
    )
    assert out == [[True] * 5, 10]
