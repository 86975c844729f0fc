"""An SQLAlchemy engine created per request and never disposed.

Real-world pattern: a per-tenant or per-request ``create_engine`` kept in a
registry; each engine's pool keeps its sqlite connection (and the database
file's descriptor) open because nobody calls ``engine.dispose()``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile

from sqlalchemy import create_engine, text

LEAKS = True
RESOURCE = "fds"
DESCRIPTION = "SQLAlchemy: create_engine per request kept in a registry, never disposed (pooled fd stays open)"

_engines: dict[int, object] = {}
_ids = itertools.count()


def setup() -> str:
    tmp = tempfile.mkdtemp(prefix="bench-sa-")
    path = os.path.join(tmp, "app.db")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(100)])
    conn.close()
    return tmp


def step(tmp: str) -> None:
    engine = create_engine(f"sqlite:///{tmp}/app.db")
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
    _engines[next(_ids)] = engine  # bug: never engine.dispose()


def teardown(tmp: str) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
