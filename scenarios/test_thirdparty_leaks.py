"""Leak suite: the same pool-and-query workload through third-party pools.

SQLAlchemy's async engine (the ``sqlite+aiosqlite`` driver, with its own
queue pool) and the ``aiosqlitepool`` package both hold aiosqlite
connections, each with a worker thread and a file descriptor. The checks are
those of ``test_pool_leaks.py``: churn, more tasks than connections, an error
inside a checkout, and a whole pool opened and disposed of per iteration.
Each test is skipped, with the reason, when its package is not installed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio

POOL_SIZE = 4
COUNT_AREAS = "SELECT count(*) FROM TMArea"
LOGBOOK = """SELECT uuid, title, stopDate FROM TMTask
    WHERE status IN (2, 3) AND trashed = 0 ORDER BY stopDate DESC, uuid LIMIT 100"""


def _sqlalchemy() -> Any:
    pytest.importorskip("aiosqlite", reason="aiosqlite is not installed (pip install 'leakcheck[scenarios]')")
    return pytest.importorskip(
        "sqlalchemy.ext.asyncio",
        reason="SQLAlchemy with asyncio support is not installed (pip install 'sqlalchemy[asyncio]')",
    )


def _aiosqlitepool() -> Any:
    pytest.importorskip("aiosqlite", reason="aiosqlite is not installed (pip install 'leakcheck[scenarios]')")
    return pytest.importorskip("aiosqlitepool", reason="aiosqlitepool is not installed (pip install aiosqlitepool)")


def _engine(things3_db: Path) -> Any:
    sa = _sqlalchemy()
    return sa.create_async_engine(f"sqlite+aiosqlite:///{things3_db}", pool_size=POOL_SIZE, max_overflow=0)


def _connection_pool(things3_db: Path) -> Any:
    aiosqlitepool = _aiosqlitepool()
    import aiosqlite

    async def connect() -> aiosqlite.Connection:
        return await aiosqlite.connect(things3_db)

    return aiosqlitepool.SQLiteConnectionPool(connect, pool_size=POOL_SIZE)


@pytest_asyncio.fixture
async def engine(things3_db: Path) -> AsyncIterator[Any]:
    """A SQLAlchemy async engine over ``things3_db``, disposed of at the end."""
    engine = _engine(things3_db)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def sqlite_pool(things3_db: Path) -> AsyncIterator[Any]:
    """An ``aiosqlitepool.SQLiteConnectionPool`` over ``things3_db``, closed at the end."""
    async with _connection_pool(things3_db) as pool:
        yield pool


# -- SQLAlchemy (async engine, aiosqlite driver) ------------------------------


async def _sa_query(engine: Any, sql: str = COUNT_AREAS) -> list[Any]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return list(await conn.execute(text(sql)))


@pytest.mark.leak
async def test_sqlalchemy_checkout_churn(engine: Any) -> None:
    """Check a connection out of the engine's pool, read the logbook, give it back.

    Catches connections or result proxies the engine keeps (py_blocks,
    native_heap) and checkouts not returned (fds, threads).
    """
    for _ in range(3):
        assert await _sa_query(engine, LOGBOOK)


@pytest.mark.leak
async def test_sqlalchemy_more_tasks_than_connections(engine: Any) -> None:
    """Twelve concurrent checkouts on an engine pool of four: eight wait in its queue."""
    await asyncio.gather(*(_sa_query(engine) for _ in range(3 * POOL_SIZE)))


# One cursor per iteration: sqlite3's cursor weakrefs saw with a period of 200
# iterations (see test_pool_leaks.py); 600 iterations show three periods.
@pytest.mark.leak(iterations=600)
async def test_sqlalchemy_exception_inside_checkout(engine: Any) -> None:
    """A statement fails inside ``async with engine.connect()``: the connection must go back."""
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError, match="no such table"):
        await _sa_query(engine, "SELECT * FROM TMNoSuchTable")


@pytest.mark.leak(iterations=100, warmup=10)
async def test_sqlalchemy_engine_created_and_disposed(things3_db: Path) -> None:
    """A whole engine per iteration: create, query, ``await engine.dispose()``.

    Catches connections dispose() leaves open (fds, threads) and per-engine
    state kept in module-level registries (py_blocks).
    """
    engine = _engine(things3_db)
    try:
        await asyncio.gather(*(_sa_query(engine) for _ in range(2)))
    finally:
        await engine.dispose()


# -- aiosqlitepool --------------------------------------------------------------


async def _pool_query(pool: Any, sql: str = COUNT_AREAS) -> list[Any]:
    async with pool.connection() as conn:
        return list(await conn.execute_fetchall(sql))


@pytest.mark.leak
async def test_aiosqlitepool_checkout_churn(sqlite_pool: Any) -> None:
    """Check a connection out of aiosqlitepool, read the logbook, give it back."""
    for _ in range(3):
        assert await _pool_query(sqlite_pool, LOGBOOK)


@pytest.mark.leak
async def test_aiosqlitepool_more_tasks_than_connections(sqlite_pool: Any) -> None:
    """Twelve concurrent checkouts on a pool of four: eight wait for a release.

    Catches the helper tasks aiosqlitepool starts per wait left pending (tasks).
    """
    await asyncio.gather(*(_pool_query(sqlite_pool) for _ in range(3 * POOL_SIZE)))


# Two cursors per iteration (the health check, the failing statement): a
# sawtooth period of 100 iterations; 300 show three.
@pytest.mark.leak(iterations=300)
async def test_aiosqlitepool_exception_inside_checkout(sqlite_pool: Any) -> None:
    """A statement fails inside ``async with pool.connection()``: the connection must go back."""
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await _pool_query(sqlite_pool, "SELECT * FROM TMNoSuchTable")


@pytest.mark.leak(iterations=100, warmup=10)
async def test_aiosqlitepool_opened_and_closed(things3_db: Path) -> None:
    """A whole pool per iteration: open, two concurrent queries, close."""
    async with _connection_pool(things3_db) as pool:
        await asyncio.gather(*(_pool_query(pool) for _ in range(2)))
