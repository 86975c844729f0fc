"""One SQLAlchemy engine for the app, a pooled connection checked out per request."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from typing import Any

from sqlalchemy import create_engine, text

LEAKS = False
RESOURCE = None
DESCRIPTION = "SQLAlchemy: one engine (created in setup, disposed in teardown), connect/query per request"


def setup() -> tuple[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-sa-")
    path = os.path.join(tmp, "app.db")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(100)])
    conn.close()
    return tmp, create_engine(f"sqlite:///{path}")


def step(state: tuple[str, Any]) -> None:
    with state[1].connect() as conn:
        conn.execute(text("SELECT count(*) FROM t WHERE id > :n"), {"n": 5}).scalar()


def teardown(state: tuple[str, Any]) -> None:
    state[1].dispose()
    shutil.rmtree(state[0], ignore_errors=True)
