"""A per-query statement cache keyed by SQL text with the values inlined."""

from __future__ import annotations

import itertools
import sqlite3

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "per-query 'prepared statement' cache keyed by SQL with literals inlined: one entry per query"

_ids = itertools.count(1)


def setup() -> tuple[sqlite3.Connection, dict[str, object]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(50)])
    return conn, {}


def step(state: tuple[sqlite3.Connection, dict[str, object]]) -> None:
    conn, cache = state
    sql = f"SELECT id, name FROM t WHERE id = {next(_ids)}"  # bug: the literal id makes every key new
    if sql not in cache:
        cache[sql] = conn.execute(sql).description
    conn.execute(sql).fetchall()


def teardown(state: tuple[sqlite3.Connection, dict[str, object]]) -> None:
    state[0].close()
