"""sqlite3's check_same_thread: a connection used in another thread raises ProgrammingError there."""

import sqlite3
import threading

conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
outcome = []


def use_it():
    try:
        conn.execute("INSERT INTO t VALUES (1)")
        outcome.append("inserted")
    except sqlite3.ProgrammingError as exc:
        outcome.append(f"ProgrammingError: {str(exc).split('.')[0]}")


t = threading.Thread(target=use_it)
t.start()
t.join()
print(outcome)
print("rows:", conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
