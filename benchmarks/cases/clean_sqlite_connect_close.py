"""sqlite3: connect, query, close per call against a file database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile

LEAKS = False
RESOURCE = None
DESCRIPTION = "sqlite3.connect / query / close per call on a file database (page cache, statement cache)"


def setup() -> str:
    tmp = tempfile.mkdtemp(prefix="bench-sqlite-")
    path = os.path.join(tmp, "app.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"name-{i}",) for i in range(2000)])
    conn.commit()
    conn.close()
    return tmp


def step(tmp: str) -> None:
    conn = sqlite3.connect(os.path.join(tmp, "app.db"))
    try:
        conn.execute("SELECT count(*), max(name) FROM t WHERE id % 7 = 3").fetchone()
    finally:
        conn.close()


def teardown(tmp: str) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
