"""Pool semantics: every path out of a checkout gives the connection back."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosqlite
import pytest

from scenarios.things3 import Pool, PoolClosed, PoolTimeout
from scenarios.things3.dbgen import temp_database


def worker_threads() -> list[threading.Thread]:
    """aiosqlite's per-connection threads (named after their target function)."""
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


@pytest.fixture(scope="module")
def database() -> Iterator[Path]:
    with temp_database(tasks=200) as path:
        yield path


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    yield
    # aiosqlite >= 0.21 lets a worker finish just after close() returns.
    for thread in worker_threads():
        thread.join(timeout=2)
    assert worker_threads() == []


async def until(condition: Callable[[], bool], what: str = "the pool's state") -> None:
    """Wait until ``condition()`` holds, checking after every turn of the loop.

    Tasks that hold connections get there after a few turns (and a thread
    round trip each); a fixed sleep guesses how long that takes, which a
    loaded machine gets wrong. The generous bound only stops a broken test.
    """
    deadline = asyncio.get_running_loop().time() + 60
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} was never reached")
        await asyncio.sleep(0.001)


async def hold(pool: Pool, release: asyncio.Event) -> None:
    async with pool.acquire():
        await release.wait()


@pytest.mark.asyncio
async def test_open_starts_with_min_size_and_reuses_connections(database: Path) -> None:
    async with await Pool.open(database, min_size=2, max_size=3) as pool:
        assert (pool.size, pool.idle, pool.in_use) == (2, 2, 0)
        async with pool.acquire() as first:
            assert (pool.idle, pool.in_use) == (1, 1)
            assert await first.execute_fetchall("SELECT count(*) FROM TMTask") == [(200,)]
        async with pool.acquire() as again:
            assert again is first  # most recently used first
        assert pool.size == 2
    assert pool.closed and pool.size == 0


@pytest.mark.asyncio
async def test_grows_to_max_then_times_out(database: Path) -> None:
    release = asyncio.Event()
    async with await Pool.open(database, max_size=3, acquire_timeout=0.05) as pool:
        holders = [asyncio.create_task(hold(pool, release)) for _ in range(3)]
        await until(lambda: (pool.size, pool.in_use) == (3, 3))
        started = time.perf_counter()
        with pytest.raises(PoolTimeout, match=r"within 0.05 s: all 3 are checked out") as info:
            async with pool.acquire():
                pass
        assert time.perf_counter() - started >= 0.04
        assert isinstance(info.value, TimeoutError) and info.value.path == database
        assert pool.waiting == 0
        release.set()
        await asyncio.gather(*holders)
        assert (pool.size, pool.idle, pool.in_use) == (3, 3, 0)


@pytest.mark.asyncio
async def test_exception_in_the_block_releases(database: Path) -> None:
    async with await Pool.open(database) as pool:
        with pytest.raises(ZeroDivisionError):
            async with pool.acquire() as conn:
                1 / 0  # noqa: B018 - the point is the exception
        assert (pool.in_use, pool.idle) == (0, 1)
        async with pool.acquire() as again:
            assert again is conn


@pytest.mark.asyncio
async def test_cancelling_the_holder_releases(database: Path) -> None:
    async with await Pool.open(database) as pool:
        task = asyncio.create_task(hold(pool, asyncio.Event()))
        await until(lambda: pool.in_use == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (pool.in_use, pool.idle) == (0, 1)


@pytest.mark.asyncio
async def test_cancelling_a_waiter_leaves_no_trace(database: Path) -> None:
    release = asyncio.Event()
    async with await Pool.open(database, max_size=1) as pool:
        holder = asyncio.create_task(hold(pool, release))
        await until(lambda: pool.in_use == 1)
        waiter = asyncio.create_task(hold(pool, asyncio.Event()))
        await until(lambda: pool.waiting == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.waiting == 0
        release.set()
        await holder
        async with pool.acquire(timeout=0.1):
            assert pool.size == 1


@pytest.mark.asyncio
async def test_connection_handed_to_a_waiter_cancelled_in_the_same_tick_comes_back(
    database: Path,
) -> None:
    async with await Pool.open(database, max_size=1) as pool:
        async with pool.acquire():
            waiter = asyncio.create_task(hold(pool, asyncio.Event()))
            await until(lambda: pool.waiting == 1)
        # The release above handed the connection to the waiter, which has
        # not run yet; cancelling it now must not lose the connection.
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)


@pytest.mark.asyncio
async def test_a_checkout_cancelled_mid_health_check_finishes_the_check_first(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenarios.things3 import pool as pool_module

    started = finished = 0
    real_check = pool_module._is_healthy

    async def counted_check(conn: aiosqlite.Connection) -> bool:
        nonlocal started, finished
        started += 1
        healthy = await real_check(conn)
        finished += 1
        return healthy

    monkeypatch.setattr(pool_module, "_is_healthy", counted_check)
    async with await Pool.open(database) as pool:
        for _ in range(50):
            task = asyncio.create_task(hold(pool, asyncio.Event()))
            await asyncio.sleep(0)  # the checkout has reached the health check
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # No check left queued on the connection's worker thread, and the
            # connection is back rather than lost or replaced.
            assert started == finished
            assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
        assert started == 50


@pytest.mark.asyncio
async def test_a_checkout_cancelled_while_connecting_gives_the_connection_to_the_pool(
    database: Path,
) -> None:
    async with await Pool.open(database, min_size=0) as pool:
        task = asyncio.create_task(hold(pool, asyncio.Event()))
        await asyncio.sleep(0)  # opening its first connection
        assert pool.size == 1 and pool.idle == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (pool.size, pool.idle, pool.in_use) == (1, 1, 0)
        assert len(worker_threads()) == 1
    # no_threads_left: close() closed the adopted connection too.


@pytest.mark.asyncio
async def test_close_waits_for_checked_out_connections(database: Path) -> None:
    pool = await Pool.open(database)

    queried: list[bool] = []

    async def query_then_release() -> None:
        async with pool.acquire() as conn:
            await asyncio.sleep(0.05)
            await conn.execute_fetchall("SELECT 1")
            queried.append(True)

    user = asyncio.create_task(query_then_release())
    await until(lambda: pool.in_use == 1)
    await pool.close(timeout=60)
    assert queried  # close() waited for the query to finish and the connection to come back
    await user  # finished its query without error
    assert pool.size == 0


@pytest.mark.asyncio
async def test_close_gives_up_after_its_timeout(database: Path, caplog: pytest.LogCaptureFixture) -> None:
    pool = await Pool.open(database)
    release = asyncio.Event()
    held: list[aiosqlite.Connection] = []

    async def stuck() -> None:
        async with pool.acquire() as conn:
            held.append(conn)
            await release.wait()

    user = asyncio.create_task(stuck())
    await until(lambda: bool(held))
    await pool.close(timeout=0.05)
    assert not user.done()  # close() gave up on it rather than waiting
    assert "closing 1 connection(s) still checked out after 0.05 s" in caplog.text
    with pytest.raises(ValueError, match="closed"):
        await held[0].execute_fetchall("SELECT 1")
    release.set()
    await user  # releasing a connection the pool already closed is harmless
    assert pool.size == 0


@pytest.mark.asyncio
async def test_use_after_close_raises_pool_closed(database: Path) -> None:
    pool = await Pool.open(database)
    await pool.close()
    await pool.close()  # idempotent
    with pytest.raises(PoolClosed, match="is closed; open a new Pool"):
        async with pool.acquire():
            pass
    with pytest.raises(PoolClosed):
        pool.watch_for_changes(lambda: None)


@pytest.mark.asyncio
async def test_close_fails_waiting_acquirers(database: Path) -> None:
    pool = await Pool.open(database, max_size=1)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(pool, release))
    await until(lambda: pool.in_use == 1)
    waiter = asyncio.create_task(hold(pool, asyncio.Event()))
    await until(lambda: pool.waiting == 1)
    closing = asyncio.create_task(pool.close())
    with pytest.raises(PoolClosed):
        await waiter
    release.set()
    await asyncio.gather(holder, closing)
    assert pool.size == 0


@pytest.mark.asyncio
async def test_prune_idle_shrinks_back_to_min_size(database: Path) -> None:
    release = asyncio.Event()
    async with await Pool.open(database, min_size=1, max_size=4, idle_timeout=60) as pool:
        holders = [asyncio.create_task(hold(pool, release)) for _ in range(4)]
        await until(lambda: pool.in_use == 4)
        release.set()
        await asyncio.gather(*holders)
        assert (pool.size, pool.idle) == (4, 4)
        assert await pool.prune_idle() == 0  # none idle for 60 s yet
        assert await pool.prune_idle(max_idle=0) == 3
        assert (pool.size, pool.idle) == (1, 1)
        assert len(worker_threads()) <= 1 + 3  # closed threads may still be finishing


@pytest.mark.asyncio
async def test_background_pruning_stops_on_close(database: Path) -> None:
    release = asyncio.Event()
    pool = await Pool.open(database, max_size=3, idle_timeout=0, prune_interval=0.01)
    holders = [asyncio.create_task(hold(pool, release)) for _ in range(3)]
    await until(lambda: pool.in_use == 3)
    release.set()
    await asyncio.gather(*holders)
    await until(lambda: pool.size == 1, "pruning back to one connection")
    await pool.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("things3-")]


@pytest.mark.asyncio
async def test_health_check_replaces_a_broken_connection(database: Path) -> None:
    async with await Pool.open(database) as pool:
        async with pool.acquire() as broken:
            await broken.close()  # behind the pool's back
        async with pool.acquire() as conn:
            assert conn is not broken
            assert await conn.execute_fetchall("SELECT 1") == [(1,)]
        assert pool.size == 1


@pytest.mark.asyncio
async def test_watch_for_changes_notices_writes_and_stops_on_close(database: Path) -> None:
    changed = asyncio.Event()
    async with await Pool.open(database) as pool:
        pool.watch_for_changes(changed.set, interval=0.01)
        await asyncio.sleep(0.03)
        assert not changed.is_set()
        stat = database.stat()
        os.utime(database, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        await asyncio.wait_for(changed.wait(), 60)
        assert any(t.get_name().startswith("things3-watch") for t in asyncio.all_tasks())
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("things3-")]


@pytest.mark.asyncio
async def test_open_refuses_a_missing_database(database: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no database at"):
        await Pool.open(database.parent / "missing.sqlite")
    assert not (database.parent / "missing.sqlite").exists()


@pytest.mark.parametrize(("min_size", "max_size"), [(-1, 2), (3, 2), (0, 0)])
def test_rejects_impossible_sizes(database: Path, min_size: int, max_size: int) -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        Pool(database, min_size=min_size, max_size=max_size)
