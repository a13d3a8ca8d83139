"""sqlite3 from threads: a connection each on one file, then one check_same_thread=False under a lock."""

import os
import sqlite3
import tempfile
import threading
import time

directory = tempfile.mkdtemp()
path = os.path.join(directory, "legacy.db")
with sqlite3.connect(path) as setup:
    setup.execute("CREATE TABLE hits (worker INTEGER, n INTEGER)")
setup.close()
write_lock = threading.Lock()


def own_connection(worker):
    conn = sqlite3.connect(path, timeout=30)
    for batch in range(5):
        with write_lock:  # one writer at a time keeps sqlite from answering "database is locked"
            with conn:  # a transaction per batch of five rows
                conn.executemany(
                    "INSERT INTO hits VALUES (?, ?)", [(worker, 5 * batch + n) for n in range(5)]
                )
        time.sleep(0.01)
    conn.close()


threads = [threading.Thread(target=own_connection, args=(w,)) for w in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()

shared = sqlite3.connect(path, check_same_thread=False)
shared_lock = threading.Lock()


def shared_connection(worker):
    for n in range(25, 50):
        with shared_lock:
            shared.execute("INSERT INTO hits VALUES (?, ?)", (worker, n))
            if n % 5 == 4:
                shared.commit()


threads = [threading.Thread(target=shared_connection, args=(w,)) for w in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()

rows = shared.execute("SELECT worker, COUNT(*), SUM(n) FROM hits GROUP BY worker ORDER BY worker").fetchall()
shared.close()
for row in rows:
    print(row)

os.remove(path)
os.rmdir(directory)
