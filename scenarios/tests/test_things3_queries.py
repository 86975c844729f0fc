"""The read queries, checked against expectations computed in plain Python.

Each expected result is derived from the raw rows (read with the stdlib
sqlite3 module) by filtering in Python, not by running the same SQL.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from scenarios.things3 import Pool, Task, queries
from scenarios.things3.dbgen import REFERENCE_DATE, temp_database
from scenarios.things3.schema import pack_date

TODAY = pack_date(REFERENCE_DATE)


class Raw:
    """Every row of the small database, as dicts, for computing expectations."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.row_factory = sqlite3.Row
        try:
            self.tasks = [dict(row) for row in conn.execute("SELECT * FROM TMTask")]
            self.tags = {row["uuid"]: dict(row) for row in conn.execute("SELECT * FROM TMTag")}
            self.task_tags = [tuple(row) for row in conn.execute("SELECT * FROM TMTaskTag")]
            self.checklist = [dict(row) for row in conn.execute("SELECT * FROM TMChecklistItem")]
            self.areas = [dict(row) for row in conn.execute("SELECT * FROM TMArea")]
        finally:
            conn.close()

    def open_todos(self) -> list[dict[str, Any]]:
        return [t for t in self.tasks if (t["type"], t["status"], t["trashed"]) == (0, 0, 0)]


def uuids(tasks: tuple[Task, ...]) -> list[str]:
    return [task.uuid for task in tasks]


def by_index(rows: list[dict[str, Any]]) -> list[str]:
    return [row["uuid"] for row in sorted(rows, key=lambda row: (row["index"], row["uuid"]))]


@pytest.fixture(scope="module")
def database() -> Iterator[Path]:
    with temp_database(tasks=500, seed=11) as path:
        yield path


@pytest.fixture(scope="module")
def raw(database: Path) -> Raw:
    return Raw(database)


@pytest_asyncio.fixture
async def pool(database: Path) -> AsyncIterator[Pool]:
    pool = await Pool.open(database, max_size=2)
    yield pool
    await pool.close()


@pytest.mark.asyncio
async def test_inbox(pool: Pool, raw: Raw) -> None:
    expected = by_index([t for t in raw.open_todos() if t["start"] == 0])
    assert expected
    assert uuids(await queries.inbox(pool)) == expected


@pytest.mark.asyncio
async def test_today_holds_started_and_due_tasks(pool: Pool, raw: Raw) -> None:
    def due(t: dict[str, Any]) -> bool:
        started = t["startDate"] is not None and t["startDate"] <= TODAY
        overdue = t["deadline"] is not None and t["deadline"] <= TODAY
        return t["start"] != 0 and (started or overdue)

    expected = {t["uuid"] for t in raw.open_todos() if due(t)}
    result = await queries.today(pool, on=REFERENCE_DATE)
    assert expected and set(uuids(result)) == expected
    assert [t.today_index for t in result] == sorted(t.today_index for t in result)


@pytest.mark.asyncio
async def test_upcoming_is_sorted_by_start_date(pool: Pool, raw: Raw) -> None:
    expected = {t["uuid"] for t in raw.open_todos() if (t["startDate"] or 0) > TODAY}
    result = await queries.upcoming(pool, after=REFERENCE_DATE)
    assert expected and set(uuids(result)) == expected
    dates = [task.start_date for task in result]
    assert all(d is not None and d > REFERENCE_DATE for d in dates)
    assert dates == sorted(dates)  # type: ignore[type-var]


@pytest.mark.asyncio
async def test_anytime_and_someday(pool: Pool, raw: Raw) -> None:
    anytime = by_index([t for t in raw.open_todos() if t["start"] == 1])
    someday = by_index([t for t in raw.open_todos() if t["start"] == 2 and t["startDate"] is None])
    assert anytime and someday
    assert uuids(await queries.anytime(pool)) == anytime
    assert uuids(await queries.someday(pool)) == someday


@pytest.mark.asyncio
async def test_logbook_is_newest_first_and_limited(pool: Pool, raw: Raw) -> None:
    done = [t for t in raw.tasks if t["status"] in (2, 3) and not t["trashed"] and t["type"] != 2]
    expected = [t["uuid"] for t in sorted(done, key=lambda t: -t["stopDate"])][:25]
    result = await queries.logbook(pool, limit=25)
    assert uuids(result) == expected
    assert all(task.stop_date is not None for task in result)


@pytest.mark.asyncio
async def test_projects_count_their_open_todos(pool: Pool, raw: Raw) -> None:
    projects = [t for t in raw.tasks if (t["type"], t["status"], t["trashed"]) == (1, 0, 0)]
    counts = {p["uuid"]: sum(t["project"] == p["uuid"] for t in raw.open_todos()) for p in projects}
    result = await queries.projects(pool)
    assert [p.uuid for p in result] == by_index(projects)
    assert {p.uuid: p.open_tasks for p in result} == counts
    assert any(counts.values())


@pytest.mark.asyncio
async def test_areas_and_tags(pool: Pool, raw: Raw) -> None:
    assert [a.title for a in await queries.areas(pool)] == [
        a["title"] for a in sorted(raw.areas, key=lambda a: a["index"])
    ]
    tags = await queries.tags(pool)
    assert {t.uuid: (t.title, t.shortcut, t.parent) for t in tags} == {
        uuid: (t["title"], t["shortcut"], t["parent"]) for uuid, t in raw.tags.items()
    }
    assert any(t.parent for t in tags)


@pytest.mark.asyncio
async def test_tasks_by_tag_and_task_tags(pool: Pool, raw: Raw) -> None:
    errand = next(uuid for uuid, tag in raw.tags.items() if tag["title"] == "Errand")
    tagged = {task for task, tag in raw.task_tags if tag == errand}
    expected = by_index([t for t in raw.open_todos() if t["uuid"] in tagged])
    result = await queries.tasks_by_tag(pool, "Errand")
    assert expected and uuids(result) == expected
    assert all("Errand" in task.tags for task in result)
    assert await queries.tasks_by_tag(pool, "no such tag") == ()


@pytest.mark.asyncio
async def test_task_with_checklist(pool: Pool, raw: Raw) -> None:
    owner = raw.checklist[0]["task"]
    items = sorted((c for c in raw.checklist if c["task"] == owner), key=lambda c: c["index"])
    detail = await queries.task_with_checklist(pool, owner)
    assert detail is not None and detail.task.uuid == owner
    assert [item.title for item in detail.checklist] == [c["title"] for c in items]
    assert await queries.task_with_checklist(pool, "missing") is None


@pytest.mark.asyncio
async def test_search_matches_title_and_notes(pool: Pool, raw: Raw) -> None:
    def hits(text: str) -> set[str]:
        text = text.lower()
        return {
            t["uuid"]
            for t in raw.tasks
            if not t["trashed"] and (text in t["title"].lower() or text in t["notes"].lower())
        }

    for text in ("passport", "RECEIPTS", "20%"):
        result = await queries.search(pool, text)
        assert hits(text) and set(uuids(result)) == hits(text), text
    assert len(await queries.search(pool, "passport", limit=2)) == 2


@pytest.mark.asyncio
async def test_search_treats_wildcards_literally(pool: Pool) -> None:
    # "%" and "_" would match everything if they reached LIKE unescaped.
    assert await queries.search(pool, "%") != ()  # notes mention "20%"
    assert await queries.search(pool, "_") == ()
    assert await queries.search(pool, "2_%") == ()
    assert await queries.search(pool, "\\") == ()


@pytest.mark.asyncio
async def test_queries_accept_a_connection_too(pool: Pool) -> None:
    async with pool.acquire() as conn:
        assert await queries.inbox(conn) == await queries.inbox(pool)


@pytest.mark.asyncio
async def test_rows_are_frozen_and_decoded(pool: Pool) -> None:
    task = (await queries.today(pool, on=REFERENCE_DATE))[0]
    assert isinstance(task.created, dt.datetime) and task.created.tzinfo is dt.timezone.utc
    assert task.start_date is None or isinstance(task.start_date, dt.date)
    with pytest.raises(AttributeError):
        task.title = "changed"  # type: ignore[misc]


@pytest.mark.asyncio
async def test_stream_reads_everything_in_batches(pool: Pool, raw: Raw) -> None:
    async with queries.stream_tasks(pool, batch_size=7) as stream:
        streamed = [task async for task in stream]
    assert streamed == list(await queries.all_tasks(pool))
    assert len(streamed) == sum(not t["trashed"] for t in raw.tasks)
    assert pool.in_use == 0


@pytest.mark.asyncio
async def test_stream_can_stop_early_and_closes_its_cursor(pool: Pool) -> None:
    first: list[Task] = []
    async with queries.stream_tasks(pool, batch_size=10) as stream:
        async for task in stream:
            first.append(task)
            if len(first) == 20:  # a batch boundary: nothing is left buffered
                break
        assert pool.in_use == 1
    assert pool.in_use == 0
    assert first == list((await queries.all_tasks(pool))[:20])
    with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
        await stream.__anext__()
