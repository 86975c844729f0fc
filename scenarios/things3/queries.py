"""The Things 3 read queries: the lists the app shows, as tuples of frozen rows.

Every query takes a ``source``: an open aiosqlite connection, or a
:class:`~.pool.Pool` to check one out of for the duration of the query. All
values reach SQLite as bound parameters; the only strings spliced into SQL are
the column-list constants below.

Large results can be read incrementally with :func:`stream_tasks`, which
closes its cursor (and returns its connection) however the reading ends.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Union

import aiosqlite

from . import faults
from .models import TAG_SEPARATOR, Area, ChecklistItem, Project, Tag, Task, TaskDetail
from .pool import Pool
from .schema import pack_date

__all__ = [
    "Source",
    "TaskStream",
    "all_tasks",
    "anytime",
    "areas",
    "inbox",
    "logbook",
    "projects",
    "search",
    "someday",
    "stream_tasks",
    "tags",
    "task_with_checklist",
    "tasks_by_tag",
    "today",
    "upcoming",
]

Source = Union[aiosqlite.Connection, Pool]
"""Where a query runs: a connection, or a pool to borrow one from."""

TASK_COLUMNS: Final = f"""
    t.uuid, t.title, t.notes, t.type, t.status, t.start, t.startDate, t.deadline,
    t.stopDate, t.creationDate, t.userModificationDate, t.project, t.area, t.heading,
    t.todayIndex, t."index",
    (SELECT group_concat(tag.title, '{TAG_SEPARATOR}')
       FROM TMTaskTag AS tt JOIN TMTag AS tag ON tag.uuid = tt.tags
      WHERE tt.tasks = t.uuid) AS tags
"""
PROJECT_COLUMNS: Final = """
    p.uuid, p.title, p.notes, p.area, p.deadline, p."index",
    (SELECT count(*) FROM TMTask AS t
      WHERE t.project = p.uuid AND t.type = 0 AND t.status = 0 AND t.trashed = 0)
"""
AREA_COLUMNS: Final = 'uuid, title, visible, "index"'
TAG_COLUMNS: Final = 'uuid, title, shortcut, parent, "index"'
CHECKLIST_COLUMNS: Final = 'uuid, task, title, status, stopDate, "index"'

_TASKS: Final = f"SELECT {TASK_COLUMNS} FROM TMTask AS t"
# An open to-do that is not in the trash: the base of every list view.
_OPEN_TODO: Final = "t.type = 0 AND t.status = 0 AND t.trashed = 0"

_INBOX_SQL: Final = f'{_TASKS} WHERE {_OPEN_TODO} AND t.start = 0 ORDER BY t."index", t.uuid'
# Today holds what is scheduled for today or earlier, plus anything whose
# deadline has come, as in the app.
_TODAY_SQL: Final = f"""{_TASKS}
    WHERE {_OPEN_TODO} AND t.start != 0
      AND (t.startDate <= :today OR t.deadline <= :today)
    ORDER BY t.todayIndex, t."index", t.uuid"""
_UPCOMING_SQL: Final = f"""{_TASKS}
    WHERE {_OPEN_TODO} AND t.startDate > :today
    ORDER BY t.startDate, t.todayIndex, t.uuid"""
_ANYTIME_SQL: Final = f'{_TASKS} WHERE {_OPEN_TODO} AND t.start = 1 ORDER BY t."index", t.uuid'
_SOMEDAY_SQL: Final = f"""{_TASKS}
    WHERE {_OPEN_TODO} AND t.start = 2 AND t.startDate IS NULL
    ORDER BY t."index", t.uuid"""
_LOGBOOK_SQL: Final = f"""{_TASKS}
    WHERE t.type IN (0, 1) AND t.status IN (2, 3) AND t.trashed = 0
    ORDER BY t.stopDate DESC, t.uuid LIMIT ?"""
_PROJECTS_SQL: Final = f"""SELECT {PROJECT_COLUMNS} FROM TMTask AS p
    WHERE p.type = 1 AND p.status = 0 AND p.trashed = 0
    ORDER BY p."index", p.uuid"""
_AREAS_SQL: Final = f'SELECT {AREA_COLUMNS} FROM TMArea ORDER BY "index", uuid'
_TAGS_SQL: Final = f'SELECT {TAG_COLUMNS} FROM TMTag ORDER BY "index", uuid'
_TASKS_BY_TAG_SQL: Final = f"""{_TASKS}
    JOIN TMTaskTag AS by_tag ON by_tag.tasks = t.uuid
    JOIN TMTag AS wanted ON wanted.uuid = by_tag.tags
    WHERE {_OPEN_TODO} AND wanted.title = ?
    ORDER BY t."index", t.uuid"""
_TASK_SQL: Final = f"{_TASKS} WHERE t.uuid = ?"
_CHECKLIST_SQL: Final = f"""SELECT {CHECKLIST_COLUMNS} FROM TMChecklistItem
    WHERE task = ? ORDER BY "index", uuid"""
_SEARCH_SQL: Final = rf"""{_TASKS}
    WHERE t.trashed = 0
      AND (t.title LIKE :pattern ESCAPE '\' OR t.notes LIKE :pattern ESCAPE '\')
    ORDER BY t.creationDate DESC, t.uuid LIMIT :limit"""
_ALL_TASKS_SQL: Final = f'{_TASKS} WHERE t.trashed = 0 ORDER BY t."index", t.uuid'

# Where the unclosed_cursor fault parks the cursors it never closes.
_open_cursors: list[aiosqlite.Cursor] = []


async def inbox(source: Source) -> tuple[Task, ...]:
    """Open to-dos not yet filed anywhere."""
    return tuple(map(Task.from_row, await _fetch(source, _INBOX_SQL)))


async def today(source: Source, *, on: dt.date | None = None) -> tuple[Task, ...]:
    """Open to-dos started or due on or before ``on`` (default: the real today)."""
    params = {"today": pack_date(on or dt.date.today())}
    return tuple(map(Task.from_row, await _fetch(source, _TODAY_SQL, params)))


async def upcoming(source: Source, *, after: dt.date | None = None) -> tuple[Task, ...]:
    """Open to-dos scheduled to start after ``after`` (default: the real today), soonest first."""
    params = {"today": pack_date(after or dt.date.today())}
    return tuple(map(Task.from_row, await _fetch(source, _UPCOMING_SQL, params)))


async def anytime(source: Source) -> tuple[Task, ...]:
    """Open to-dos in the Anytime list."""
    return tuple(map(Task.from_row, await _fetch(source, _ANYTIME_SQL)))


async def someday(source: Source) -> tuple[Task, ...]:
    """Open to-dos put off to Someday without a date."""
    return tuple(map(Task.from_row, await _fetch(source, _SOMEDAY_SQL)))


async def logbook(source: Source, *, limit: int = 100) -> tuple[Task, ...]:
    """The ``limit`` most recently completed or cancelled to-dos and projects."""
    return tuple(map(Task.from_row, await _fetch(source, _LOGBOOK_SQL, (limit,))))


async def projects(source: Source) -> tuple[Project, ...]:
    """Open projects, each with its number of open to-dos."""
    return tuple(map(Project.from_row, await _fetch(source, _PROJECTS_SQL)))


async def areas(source: Source) -> tuple[Area, ...]:
    """All areas, in sidebar order."""
    return tuple(map(Area.from_row, await _fetch(source, _AREAS_SQL)))


async def tags(source: Source) -> tuple[Tag, ...]:
    """All tags, in the order the app lists them."""
    return tuple(map(Tag.from_row, await _fetch(source, _TAGS_SQL)))


async def tasks_by_tag(source: Source, title: str) -> tuple[Task, ...]:
    """Open to-dos carrying the tag called ``title``."""
    return tuple(map(Task.from_row, await _fetch(source, _TASKS_BY_TAG_SQL, (title,))))


async def task_with_checklist(source: Source, uuid: str) -> TaskDetail | None:
    """The task ``uuid`` (in any state) with its checklist, or None if there is no such task."""
    async with _connected(source) as conn:
        found = await _fetch(conn, _TASK_SQL, (uuid,))
        if not found:
            return None
        items = await _fetch(conn, _CHECKLIST_SQL, (uuid,))
    return TaskDetail(Task.from_row(found[0]), tuple(map(ChecklistItem.from_row, items)))


async def search(source: Source, text: str, *, limit: int | None = None) -> tuple[Task, ...]:
    """Tasks not in the trash whose title or notes contain ``text``, newest first.

    The match is case-insensitive for ASCII letters (SQLite's LIKE) and
    literal: ``%`` and ``_`` in ``text`` match only themselves.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # LIMIT -1 is SQLite for "no limit", which keeps the statement constant.
    params = {"pattern": f"%{escaped}%", "limit": -1 if limit is None else limit}
    return tuple(map(Task.from_row, await _fetch(source, _SEARCH_SQL, params)))


async def all_tasks(source: Source) -> tuple[Task, ...]:
    """Every task not in the trash, read in one go (see :func:`stream_tasks` to read in batches)."""
    return tuple(map(Task.from_row, await _fetch(source, _ALL_TASKS_SQL)))


class TaskStream:
    """Async iterator over an open cursor, fetching ``batch_size`` rows at a time.

    Obtained from :func:`stream_tasks`, which owns (and closes) the cursor.
    """

    def __init__(self, cursor: aiosqlite.Cursor, batch_size: int) -> None:
        self._cursor = cursor
        self._batch_size = batch_size
        self._buffer: collections.deque[Any] = collections.deque()
        self._exhausted = False

    def __aiter__(self) -> TaskStream:
        return self

    async def __anext__(self) -> Task:
        if not self._buffer and not self._exhausted:
            self._buffer.extend(await self._cursor.fetchmany(self._batch_size))
            self._exhausted = not self._buffer
        if not self._buffer:
            raise StopAsyncIteration
        return Task.from_row(self._buffer.popleft())


@contextlib.asynccontextmanager
async def stream_tasks(source: Source, *, batch_size: int = 256) -> AsyncIterator[TaskStream]:
    """Read every task not in the trash incrementally; stopping early is fine.

    ::

        async with stream_tasks(pool) as stream:
            async for task in stream:
                if enough(task):
                    break

    A context manager rather than an async generator: a generator abandoned
    by ``break`` keeps its cursor open until the garbage collector or the
    event loop's shutdown finalizes it, while ``async with`` closes it at once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    async with _connected(source) as conn:
        cursor = await conn.execute(_ALL_TASKS_SQL)
        try:
            yield TaskStream(cursor, batch_size)
        finally:
            await cursor.close()


@contextlib.asynccontextmanager
async def _connected(source: Source) -> AsyncIterator[aiosqlite.Connection]:
    if isinstance(source, Pool):
        async with source.acquire() as conn:
            yield conn
    else:
        yield source


async def _fetch(source: Source, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
    async with _connected(source) as conn:
        cursor = await conn.execute(sql, params)
        try:
            return list(await cursor.fetchall())
        finally:
            if faults.enabled("unclosed_cursor"):
                # FAULT(unclosed_cursor): the cursor is kept "for debugging" and
                # never closed; each one pins its statement and result buffers.
                _open_cursors.append(cursor)
            else:
                await cursor.close()
