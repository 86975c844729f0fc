"""QueryCache: hits, LRU eviction, TTL, and a warmer that always stops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio

from scenarios.things3 import Pool, QueryCache, queries
from scenarios.things3.cache import CacheClosed
from scenarios.things3.dbgen import temp_database


class FakeClock:
    """A clock the test moves by hand, so TTL tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warmers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "things3-cache-warmer"]


@pytest.fixture(scope="module")
def database() -> Iterator[Path]:
    with temp_database(tasks=200) as path:
        yield path


@pytest_asyncio.fixture
async def pool(database: Path) -> AsyncIterator[Pool]:
    pool = await Pool.open(database)
    yield pool
    await pool.close()
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(timeout=2)


@pytest.mark.asyncio
async def test_second_get_is_a_hit(pool: Pool) -> None:
    async with QueryCache(pool) as cache:
        first = await cache.get(queries.inbox)
        assert await cache.get(queries.inbox) is first
        assert await cache.get(queries.logbook, limit=5) is not await cache.get(queries.logbook, limit=6)
        stats = cache.stats
        assert (stats.hits, stats.misses, stats.size) == (1, 3, 3)


@pytest.mark.asyncio
async def test_least_recently_used_entry_is_evicted(pool: Pool) -> None:
    async with QueryCache(pool, max_entries=2) as cache:
        await cache.get(queries.areas)
        await cache.get(queries.tags)
        await cache.get(queries.areas)  # now tags is the least recently used
        await cache.get(queries.inbox)
        assert (len(cache), cache.stats.evictions) == (2, 1)
        misses = cache.stats.misses
        await cache.get(queries.areas)
        assert cache.stats.misses == misses
        await cache.get(queries.tags)
        assert cache.stats.misses == misses + 1


@pytest.mark.asyncio
async def test_entries_expire_after_ttl(pool: Pool) -> None:
    clock = FakeClock()
    async with QueryCache(pool, ttl=10, clock=clock) as cache:
        first = await cache.get(queries.areas)
        clock.now += 9.9
        assert await cache.get(queries.areas) is first
        clock.now += 0.2
        assert await cache.get(queries.areas) is not first
        assert cache.stats.expirations == 1


@pytest.mark.asyncio
async def test_invalidate_and_use_after_close(pool: Pool) -> None:
    cache = QueryCache(pool)
    await cache.get(queries.areas)
    cache.invalidate()
    assert len(cache) == 0
    await cache.close()
    with pytest.raises(CacheClosed, match="after close"):
        await cache.get(queries.areas)


@pytest.mark.asyncio
async def test_warmer_fills_the_cache_and_stops_on_close(pool: Pool) -> None:
    async with QueryCache(pool) as cache:
        cache.start_warming([queries.inbox, partial(queries.logbook, limit=10)], interval=0.01)
        with pytest.raises(RuntimeError, match="already warming"):
            cache.start_warming([], interval=1)
        await asyncio.sleep(0.05)
        assert cache.warming and len(cache) == 2
        await cache.get(queries.logbook, limit=10)
        assert cache.stats.misses == 0
    assert not cache.warming and warmers() == []
    assert pool.in_use == 0


@pytest.mark.asyncio
async def test_wait_warm_returns_after_the_first_round_or_when_the_warmer_stops(
    database: Path,
) -> None:
    pool = await Pool.open(database)
    cache = QueryCache(pool)
    with pytest.raises(RuntimeError, match="before start_warming"):
        await cache.wait_warm()
    cache.start_warming([queries.areas, partial(queries.logbook, limit=10)], interval=60)
    await asyncio.wait_for(cache.wait_warm(), 5)
    assert len(cache) == 2 and cache.warming
    await cache.close()

    # A warmer stopped before its first round still releases the waiters.
    stopped = QueryCache(pool)
    stopped.start_warming([queries.areas], interval=60)
    await pool.close()
    await asyncio.wait_for(stopped.wait_warm(), 1)
    assert len(stopped) == 0 and not stopped.warming
    await stopped.close()


@pytest.mark.asyncio
async def test_warmer_stops_when_its_pool_closes(database: Path) -> None:
    pool = await Pool.open(database)
    cache = QueryCache(pool)
    cache.start_warming([queries.areas], interval=60)
    await asyncio.sleep(0.01)
    (warmer,) = warmers()
    await pool.close()
    await asyncio.wait_for(warmer, 1)  # well before the 60 s interval
    assert not cache.warming
    await cache.close()
