"""A statement cache keyed by parametrised SQL, bounded by an LRU of 100 entries."""

from __future__ import annotations

import collections
import itertools
import sqlite3

LEAKS = False
RESOURCE = None
DESCRIPTION = "statement cache keyed by parametrised SQL (bounded LRU): look-alike of the unbounded cache"

_ids = itertools.count(1)
_SQL = [f"SELECT id, name FROM t WHERE id = ? AND {i} = {i}" for i in range(40)]


def setup() -> tuple[sqlite3.Connection, collections.OrderedDict[str, object]]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(50)])
    return conn, collections.OrderedDict()


def step(state: tuple[sqlite3.Connection, collections.OrderedDict[str, object]]) -> None:
    conn, cache = state
    n = next(_ids)
    sql = _SQL[n % len(_SQL)]
    if sql in cache:
        cache.move_to_end(sql)
    else:
        cache[sql] = conn.execute(sql, (1,)).description
        if len(cache) > 100:
            cache.popitem(last=False)
    conn.execute(sql, (n % 50,)).fetchall()


def teardown(state: tuple[sqlite3.Connection, collections.OrderedDict[str, object]]) -> None:
    state[0].close()
