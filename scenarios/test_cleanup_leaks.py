"""Leak suite: the cleanup paths, where a whole pool or database goes away.

Here each iteration creates and destroys what the other suites set up once:
a pool, a database file, background tasks. What is not cleaned up stays
behind as descriptors and threads (connections), files (databases and their
WAL/SHM companions) or asyncio tasks (watchers).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from scenarios.things3 import Pool, queries, temp_database

pytestmark = pytest.mark.asyncio


@pytest.mark.leak
async def test_pool_opened_and_closed(things3_db: Path) -> None:
    """Open a pool with two connections, use both, close it.

    Catches connections close() forgets, idle or checked out (fds, threads:
    the ``close_forgets_idle`` fault).
    """
    pool = await Pool.open(things3_db, min_size=2, max_size=2)
    try:
        await asyncio.gather(queries.areas(pool), queries.tags(pool))
    finally:
        await pool.close()


# Generating the database is pure Python: a short, shallow attribution window.
@pytest.mark.leak(iterations=100, warmup=10, attribution_iterations=10, tracemalloc_frames=5)
async def test_temp_database_created_and_deleted() -> None:
    """Generate a small database, read it through a pool, delete it.

    Catches the database, its -wal/-shm files or its directory left on disk
    (files: the ``temp_db_not_deleted`` fault) and descriptors still open on
    them (fds).
    """
    with temp_database(tasks=200) as path:
        async with await Pool.open(path) as pool:
            assert await queries.inbox(pool)


@pytest.fixture
def quiet_pool_log(caplog: pytest.LogCaptureFixture) -> None:
    """close(timeout=...) warns each time it gives up waiting: expected here, not kept."""
    caplog.set_level(logging.ERROR, logger="scenarios.things3.pool")


@pytest.mark.leak
async def test_close_with_a_connection_checked_out(things3_db: Path, quiet_pool_log: None) -> None:
    """Close a pool while a task still holds a connection; close gives up waiting.

    The holder's connection is closed under it after the grace period.
    Catches that connection left open (fds, threads) and a holder that can
    no longer give it back and hangs (tasks).
    """
    pool = await Pool.open(things3_db)
    checked_out, finish = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with pool.acquire():
            checked_out.set()
            await finish.wait()

    task = asyncio.create_task(holder())
    await checked_out.wait()
    await pool.close(timeout=0.001)
    finish.set()
    await task
    assert pool.in_use == 0 and pool.idle == 0


@pytest.mark.leak
async def test_watch_started_and_pool_closed(things3_db: Path) -> None:
    """Watch the database for changes, then close the pool: the watcher must stop.

    Catches a polling task that outlives its pool (tasks: the
    ``dropped_poll_task`` fault).
    """
    pool = await Pool.open(things3_db, min_size=0)
    pool.watch_for_changes(lambda: None, interval=60)
    await asyncio.sleep(0)  # let the watcher take its first reading
    await pool.close()
