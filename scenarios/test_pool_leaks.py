"""Leak suite: the connection pool's checkout paths.

Every aiosqlite connection owns a worker thread and a file descriptor, so a
connection the pool loses shows as ``fds`` and ``threads`` growing by one per
iteration; a waiter or timer left behind shows in ``tasks`` or ``py_blocks``.
Each test's body is one iteration; the pools are set up once around them.

Several tests run more iterations than the default: CPython's sqlite3 keeps a
weak reference per cursor and prunes a connection's list only every 200
cursors. A test making one cursor per connection per iteration (the health
check of a checkout) makes ``py_blocks`` saw up and down with a period of 200
iterations, two cursors with a period of 100; three periods show it coming
back down, enough to call it bounded in one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from scenarios.things3 import Pool, PoolTimeout

pytestmark = pytest.mark.asyncio

#: Three sawtooth periods for a test making one or two cursors per connection.
ONE_CURSOR = 600
TWO_CURSORS = 300


@pytest_asyncio.fixture
async def tight_pool(things3_db: Path) -> AsyncIterator[Pool]:
    """Two connections at most: a third checkout has to wait."""
    async with await Pool.open(things3_db, max_size=2, acquire_timeout=5) as pool:
        yield pool


@pytest_asyncio.fixture
async def roomy_pool(things3_db: Path) -> AsyncIterator[Pool]:
    """Room for hundreds of connections, so that one lost per iteration shows as
    growing fds and threads instead of, after four, a PoolTimeout."""
    pool = await Pool.open(things3_db, max_size=1000)
    try:
        yield pool
    finally:
        await pool.close(timeout=1)


@pytest_asyncio.fixture
async def elastic_pool(things3_db: Path) -> AsyncIterator[Pool]:
    """One connection when quiet, up to eight under load; idle ones may be pruned at once."""
    async with await Pool.open(things3_db, min_size=1, max_size=8, idle_timeout=0) as pool:
        yield pool


async def _count_areas(pool: Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute_fetchall("SELECT count(*) FROM TMArea")


async def _hold_until_cancelled(pool: Pool, checked_out: asyncio.Event) -> None:
    async with pool.acquire():
        checked_out.set()
        await asyncio.Event().wait()


@pytest.mark.leak
async def test_acquire_release_churn(pool: Pool) -> None:
    """Check a connection out, query, give it back: the pool's everyday path.

    Catches a release that forgets the connection (fds, threads) or keeps a
    record of every checkout (py_blocks).
    """
    for _ in range(5):
        await _count_areas(pool)


@pytest.mark.leak
async def test_more_tasks_than_connections(pool: Pool) -> None:
    """Twelve concurrent checkouts on a pool of four: eight queue up as waiters.

    Catches waiter futures or their timeout timers left in the pool (py_blocks,
    native_heap) and hand-offs that lose a connection (fds, threads).
    """
    await asyncio.gather(*(_count_areas(pool) for _ in range(3 * pool.max_size)))
    assert pool.in_use == 0 and pool.waiting == 0


@pytest.mark.leak(iterations=TWO_CURSORS)
async def test_exception_inside_checkout(roomy_pool: Pool) -> None:
    """A query fails inside ``async with pool.acquire()``: the error path must release.

    Catches a connection never returned when its block raised (fds, threads:
    the ``lost_connection_on_error`` fault), and tracebacks kept alive (py_blocks).
    """
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        async with roomy_pool.acquire() as conn:
            await conn.execute_fetchall("SELECT * FROM TMNoSuchTable")


@pytest.mark.leak(iterations=ONE_CURSOR)
async def test_cancelled_while_holding_a_connection(pool: Pool) -> None:
    """The task holding a connection is cancelled: the connection must come back.

    Catches a release skipped on CancelledError (fds, threads) and a
    cancelled task kept referenced (tasks, py_blocks).
    """
    checked_out = asyncio.Event()
    holder = asyncio.create_task(_hold_until_cancelled(pool, checked_out))
    await checked_out.wait()
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    assert pool.in_use == 0


@pytest.mark.leak(iterations=ONE_CURSOR)
async def test_cancelled_while_waiting_for_a_connection(tight_pool: Pool) -> None:
    """A task queued for a connection is cancelled before it gets one.

    Catches the waiter's future and timer left queued (py_blocks), and a
    connection handed to the cancelled waiter and lost (fds, threads).
    """
    async with tight_pool.acquire(), tight_pool.acquire():
        waiter = asyncio.create_task(_count_areas(tight_pool))
        while not tight_pool.waiting:
            await asyncio.sleep(0)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    assert tight_pool.waiting == 0 and tight_pool.in_use == 0


@pytest.mark.leak(iterations=ONE_CURSOR)
async def test_acquire_timeout(tight_pool: Pool) -> None:
    """Every connection is busy and a checkout gives up with PoolTimeout.

    Catches timed-out waiters never removed from the queue (py_blocks) and
    expiry timers left scheduled on the loop (timers at the end of the run).
    """
    async with tight_pool.acquire(), tight_pool.acquire():
        with pytest.raises(PoolTimeout):
            async with tight_pool.acquire(timeout=0.001):
                pass  # pragma: no cover - never checked out
    assert tight_pool.waiting == 0


@pytest.mark.leak(iterations=ONE_CURSOR)
async def test_grow_to_max_then_prune_back(elastic_pool: Pool) -> None:
    """A burst opens every connection the pool allows; prune_idle closes them again.

    Catches pruned connections whose worker thread or descriptor stays behind
    (threads, fds) and bookkeeping that outlives the connection (py_blocks).
    """
    all_out = asyncio.Event()

    async def hold_one() -> None:
        async with elastic_pool.acquire():
            if elastic_pool.in_use == elastic_pool.max_size:
                all_out.set()
            await all_out.wait()

    await asyncio.gather(*(hold_one() for _ in range(elastic_pool.max_size)))
    assert await elastic_pool.prune_idle(max_idle=0) == elastic_pool.max_size - elastic_pool.min_size
    assert elastic_pool.size == elastic_pool.min_size
