"""Leak suite: the Things 3 read queries and the result cache.

Each query checks a connection out of the pool, runs one statement and turns
the rows into frozen dataclasses. A cursor left open keeps its statement and
result buffers (``native_heap``, ``py_blocks``); rows or results kept
somewhere grow ``py_blocks``; a cache that forgets to evict grows both; a
warming task left running grows ``tasks``.

Iteration counts follow the cost of a query over the default 50,000-task
database. A query makes two cursors on one connection (the checkout's health
check and the statement), and CPython's sqlite3 keeps a weak reference per
cursor, pruning them only every 200 cursors: ``py_blocks`` saws up by two
blocks per iteration and falls back every 100. Cheap queries run 300
iterations, three periods, which shows the sawtooth for what it is. The list
views that sort or return thousands of rows take 0.1-1.3 s an iteration, too long
for 300; they run fewer and tolerate those two blocks (``SAWTOOTH``). What
they exist to catch, a leak per row, grows by thousands of blocks. Their
attribution window (run for every test when a report is written) is short
and keeps 5 frames: tracing every allocation of thousands of rows costs about
1 s an iteration with 5 frames and 5 s with the default 25. The same short
window serves every query test.

Every query's buffers are malloc'd and freed on aiosqlite's worker thread,
whose glibc cache (up to 7 freed chunks per size class) fills over hundreds
of iterations; ``native_heap`` takes every Python thread's cache out of its
reading, so these tests run with the default native limit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable
from typing import Callable

import pytest
import pytest_asyncio

from scenarios.things3 import Pool, QueryCache, queries
from scenarios.things3.dbgen import REFERENCE_DATE

pytestmark = pytest.mark.asyncio

Query = Callable[[Pool, str], Awaitable[object]]

#: Every list view, called as ``await query(pool, checklist_task)``. Dates are
#: the generator's reference day, so each list has rows at any database size.
QUERIES: dict[str, Query] = {
    "inbox": lambda pool, _: queries.inbox(pool),
    "today": lambda pool, _: queries.today(pool, on=REFERENCE_DATE),
    "upcoming": lambda pool, _: queries.upcoming(pool, after=REFERENCE_DATE),
    "anytime": lambda pool, _: queries.anytime(pool),
    "someday": lambda pool, _: queries.someday(pool),
    "logbook": lambda pool, _: queries.logbook(pool, limit=100),
    "projects": lambda pool, _: queries.projects(pool),
    "areas": lambda pool, _: queries.areas(pool),
    "tags": lambda pool, _: queries.tags(pool),
    "tasks_by_tag": lambda pool, _: queries.tasks_by_tag(pool, "Errand"),
    "task_with_checklist": lambda pool, uuid: queries.task_with_checklist(pool, uuid),
    "search": lambda pool, _: queries.search(pool, "invoice", limit=50),
}


#: Limits for a test too slow to run the three sawtooth periods: the two weak
#: references per iteration of sqlite3's cursor list (seen at aiosqlite/core.py
#: in ``new_weakref``), and half a block of margin, as in the default limit.
SAWTOOTH = {"py_blocks": 2.5}
#: The list views returning thousands of rows at the default database size.
SLOW = {"inbox", "today", "upcoming", "anytime", "someday"}
#: A short, shallow attribution window for those.
SHORT_WINDOW = {"attribution_iterations": 10, "tracemalloc_frames": 5}


def _leak_mark(name: str) -> pytest.MarkDecorator:
    if name in SLOW:
        return pytest.mark.leak(iterations=60, warmup=10, limits=SAWTOOTH, **SHORT_WINDOW)
    return pytest.mark.leak(iterations=300, warmup=10, **SHORT_WINDOW)


@pytest.mark.parametrize("name", [pytest.param(name, marks=_leak_mark(name)) for name in QUERIES])
async def test_query(pool: Pool, checklist_task: str, name: str) -> None:
    """One list view, read in full.

    Catches cursors left open (native_heap, py_blocks: the ``unclosed_cursor``
    fault), rows kept beyond the call (py_blocks) and checkouts not returned.
    """
    result = await QUERIES[name](pool, checklist_task)
    assert result


@pytest.mark.leak(iterations=60, warmup=10, limits=SAWTOOTH, **SHORT_WINDOW)
async def test_mixed_read_workload(pool: Pool, checklist_task: str) -> None:
    """What the app does on launch: sidebar, Today, a project count, a search, a task.

    Run concurrently on a pool of four, so checkouts overlap and wait.
    Catches anything the single-query tests miss when queries interleave.
    """
    await asyncio.gather(
        queries.areas(pool),
        queries.tags(pool),
        queries.today(pool, on=REFERENCE_DATE),
        queries.logbook(pool, limit=20),
        queries.search(pool, "invoice", limit=20),
        queries.task_with_checklist(pool, checklist_task),
    )


# memray attributes this one: about 3x the step's time, where tracemalloc takes 20x.
@pytest.mark.leak(
    iterations=20,
    warmup=3,
    limits=SAWTOOTH,
    attribution="memray",
    attribution_iterations=4,
)
async def test_all_tasks_fetched_in_full(pool: Pool) -> None:
    """Every task not in the trash, tens of thousands of rows, in one fetchall.

    Catches per-row leaks, which grow by thousands of blocks per iteration.
    """
    assert len(await queries.all_tasks(pool)) > 0


@pytest.mark.leak(iterations=60, warmup=10, limits=SAWTOOTH, **SHORT_WINDOW)
async def test_stream_stopped_early(pool: Pool) -> None:
    """Stream every task in batches, but stop after three batches.

    Catches a cursor (and its checkout) left open when the reader breaks out
    of ``async for``: the stream's ``async with`` must close it at once.
    """
    async with queries.stream_tasks(pool, batch_size=100) as stream:
        read = 0
        async for _ in stream:
            read += 1
            if read == 300:
                break
    assert pool.in_use == 0


@pytest.mark.leak
async def test_cache_hits_misses_and_evictions(pool: Pool) -> None:
    """A cache of four entries asked for six keys: hits, misses and evictions.

    Catches entries never evicted, or keys that never match (py_blocks:
    the ``unbounded_cache`` fault).
    """
    cache = QueryCache(pool, max_entries=4, ttl=60)
    try:
        for limit in (1, 2, 3, 1, 4, 5, 6, 1):
            await cache.get(queries.logbook, limit=limit)
        await cache.get(queries.areas)
        await cache.get(queries.areas)
    finally:
        await cache.close()


@pytest_asyncio.fixture
async def cache(pool: Pool) -> AsyncIterator[QueryCache]:
    """One cache of eight entries for the whole run (fixtures are set up once)."""
    async with QueryCache(pool, max_entries=8, ttl=60) as cache:
        yield cache


@pytest.mark.leak
async def test_cache_kept_across_iterations(cache: QueryCache) -> None:
    """One cache for the whole run, asked for more keys than it holds, over and over.

    Catches a cache that grows past ``max_entries`` (py_blocks, the
    ``unbounded_cache`` fault) where a per-iteration cache would hide it.
    """
    for limit in range(1, 13):
        await cache.get(queries.logbook, limit=limit)


# A warming round makes four cursors on one connection (a health check and a
# statement per query): sqlite3's cursor sawtooth has a period of 50
# iterations; 300 show six.
@pytest.mark.leak(iterations=300)
async def test_cache_warming_started_and_closed(pool: Pool) -> None:
    """A cache warms its entries in the background and is closed, the pool staying open.

    Catches a warming task that outlives its cache (tasks: the
    ``warmer_never_stopped`` fault) and the queries it keeps running.
    """
    cache = QueryCache(pool, max_entries=4, ttl=60)
    cache.start_warming([queries.areas, functools.partial(queries.logbook, limit=10)], interval=60)
    await cache.wait_warm()
    await cache.close()
    assert not cache.warming


# Closed mid-round, the warmer is cancelled in its checkout's health check: one
# cursor an iteration, a sawtooth period of 200 iterations; 600 show three.
@pytest.mark.leak(iterations=600)
async def test_cache_closed_while_warming(pool: Pool) -> None:
    """A cache is closed while its warmer is still in its first query.

    Catches work abandoned by the cancelled warmer: a health check left queued
    on the connection's worker thread while the connection went back to the
    pool grew ``py_blocks`` by two blocks an iteration whenever the loop
    outran that thread (one run in four here; the pool's own tests pin the
    fix down deterministically).
    """
    cache = QueryCache(pool, max_entries=4, ttl=60)
    cache.start_warming([queries.areas, functools.partial(queries.logbook, limit=10)], interval=60)
    await asyncio.sleep(0)  # the warmer is checking out its connection
    await cache.close()
    assert not cache.warming
