"""An sqlite3 in-memory connection per call cached and never closed (native memory)."""

from __future__ import annotations

import itertools
import sqlite3

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "sqlite3.connect(':memory:') per call kept in a dict, never closed (sqlite's own malloc)"

_conns: dict[int, sqlite3.Connection] = {}
_ids = itertools.count()


def step() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    conn.execute("INSERT INTO t (payload) VALUES (?)", ("x" * 200,))
    _conns[next(_ids)] = conn
