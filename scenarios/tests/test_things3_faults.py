"""Fault switches, and proof that each fault produces the leak it names."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios.things3 import Pool, QueryCache, faults, queries
from scenarios.things3.dbgen import temp_database
from scenarios.things3.faults import CATALOGUE, ENV_VAR, UnknownFaultError


def live_workers() -> int:
    """aiosqlite worker threads alive now, after letting closed ones finish."""
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    alive = 0
    for thread in workers:
        thread.join(timeout=0.2)
        alive += thread.is_alive()
    return alive


def things3_tasks(prefix: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefix)]


@pytest.fixture(scope="module")
def database() -> Iterator[Path]:
    with temp_database(tasks=200) as path:
        yield path


@pytest.fixture(autouse=True)
def no_faults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


# -- switching faults on -------------------------------------------------------


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not faults.enabled("unclosed_cursor")
    monkeypatch.setenv(ENV_VAR, " unclosed_cursor, temp_db_not_deleted ,")
    assert faults.enabled("unclosed_cursor") and faults.enabled("temp_db_not_deleted")
    assert faults.active() == {"unclosed_cursor", "temp_db_not_deleted"}


def test_unknown_name_in_the_environment_names_it_and_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, "unclosed_cursor,unclosed_cursors")
    with pytest.raises(UnknownFaultError) as info:
        faults.enabled("unclosed_cursor")
    message = str(info.value)
    assert "'unclosed_cursors'" in message and ENV_VAR in message
    assert all(name in message for name in CATALOGUE)


def test_inject_nests_and_validates() -> None:
    with faults.inject("unbounded_cache"):
        with faults.inject("unbounded_cache", "dropped_poll_task"):
            assert faults.active() == {"unbounded_cache", "dropped_poll_task"}
        assert faults.active() == {"unbounded_cache"}
    assert faults.active() == frozenset()
    with pytest.raises(UnknownFaultError, match="'nope'"):
        faults.enabled("nope")
    with pytest.raises(UnknownFaultError, match="'nope'"), faults.inject("nope"):
        pass


# -- each fault leaks ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_lost_connection_on_error(database: Path, fault_on: bool) -> None:
    pool = await Pool.open(database, max_size=10)
    with faults.inject(*["lost_connection_on_error"] * fault_on):
        for _ in range(3):
            with pytest.raises(LookupError):
                async with pool.acquire():
                    raise LookupError
    assert (pool.in_use, live_workers()) == ((3, 3) if fault_on else (0, 1))
    await pool.close(timeout=0)  # closes the leaked ones too
    assert live_workers() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_unclosed_cursor(database: Path, fault_on: bool) -> None:
    async with await Pool.open(database) as pool:
        with faults.inject(*["unclosed_cursor"] * fault_on):
            for _ in range(5):
                await queries.areas(pool)
        leaked = list(queries._open_cursors)
        assert len(leaked) == (5 if fault_on else 0)
        for cursor in leaked:
            await cursor.close()
        queries._open_cursors.clear()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_unbounded_cache(database: Path, fault_on: bool) -> None:
    async with await Pool.open(database) as pool, QueryCache(pool, max_entries=2) as cache:
        with faults.inject(*["unbounded_cache"] * fault_on):
            for _ in range(5):
                await cache.get(queries.areas)
        assert len(cache) == (5 if fault_on else 1)


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_close_forgets_idle(database: Path, fault_on: bool) -> None:
    pool = await Pool.open(database, min_size=3, max_size=3)
    with faults.inject(*["close_forgets_idle"] * fault_on):
        await pool.close()
    assert live_workers() == (3 if fault_on else 0)
    for entry in pool._idle:
        await entry.conn.close()
    assert live_workers() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_warmer_never_stopped(database: Path, fault_on: bool) -> None:
    pool = await Pool.open(database)
    cache = QueryCache(pool)
    cache.start_warming([queries.areas], interval=0.01)
    with faults.inject(*["warmer_never_stopped"] * fault_on):
        await cache.close()
    await asyncio.sleep(0.03)
    orphans = things3_tasks("things3-cache-warmer")
    assert len(orphans) == (1 if fault_on else 0)
    await pool.close()  # the one thing that still stops an orphaned warmer
    await asyncio.gather(*orphans)


@pytest.mark.asyncio
@pytest.mark.parametrize("fault_on", [False, True])
async def test_dropped_poll_task(database: Path, fault_on: bool) -> None:
    pool = await Pool.open(database)
    with faults.inject(*["dropped_poll_task"] * fault_on):
        pool.watch_for_changes(lambda: None, interval=0.01)
    await pool.close()
    orphans = things3_tasks("things3-watch")
    assert len(orphans) == (1 if fault_on else 0)
    for task in orphans:
        task.cancel()
    await asyncio.gather(*orphans, return_exceptions=True)


def test_every_fault_is_woven_in_and_tested() -> None:
    package = Path(__file__).resolve().parents[1] / "things3"
    source = "".join(path.read_text() for path in package.glob("*.py"))
    tests = Path(__file__).read_text() + (Path(__file__).parent / "test_things3_dbgen.py").read_text()
    for name in CATALOGUE:
        assert f"# FAULT({name})" in source, name
        assert f'"{name}"' in tests, name
