"""One long-lived sqlite3 connection, a fresh cursor per call.

CPython's sqlite3 keeps a weak reference per cursor on the connection and
prunes the list only every ~200 cursor creations: a slow sawtooth in live
blocks that looks unbounded for a couple of hundred iterations.
"""

from __future__ import annotations

import sqlite3

LEAKS = False
RESOURCE = None
DESCRIPTION = "sqlite3 cursor per call on one connection: weakref list pruned every ~200 cursors (sawtooth)"


def setup() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(100)])
    return conn


def step(conn: sqlite3.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT name FROM t WHERE id = ?", (5,))
    cur.fetchone()
    cur.close()


def teardown(conn: sqlite3.Connection) -> None:
    conn.close()
