"""The part of the Things 3 database schema this package reads and writes.

Table and column names are the real ones from Things 3's ``main.sqlite``, so
the queries here read like the ones in the Things 3 tooling (``things3-core``,
``things.py``). Only the columns those queries need are declared.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Final

__all__ = [
    "DDL",
    "INDEXES",
    "Start",
    "Status",
    "TaskType",
    "pack_date",
    "unpack_date",
]


class TaskType(enum.IntEnum):
    """``TMTask.type``: what kind of item a row is."""

    TODO = 0
    PROJECT = 1
    HEADING = 2


class Status(enum.IntEnum):
    """``TMTask.status`` and ``TMChecklistItem.status``."""

    OPEN = 0
    CANCELLED = 2
    COMPLETED = 3


class Start(enum.IntEnum):
    """``TMTask.start``: the list an open item lives in."""

    INBOX = 0
    ANYTIME = 1
    SOMEDAY = 2


# Things 3 stores calendar dates (startDate, deadline) as one integer with the
# year, month and day in separate bit fields. The encoding is monotonic, so
# packed dates compare and sort in SQL exactly like the dates they stand for.
_YEAR_SHIFT: Final = 16
_MONTH_SHIFT: Final = 12
_DAY_SHIFT: Final = 7


def pack_date(day: dt.date) -> int:
    """Encode ``day`` the way Things 3 does: ``year<<16 | month<<12 | day<<7``."""
    return day.year << _YEAR_SHIFT | day.month << _MONTH_SHIFT | day.day << _DAY_SHIFT


def unpack_date(packed: int) -> dt.date:
    """Decode a Things 3 packed date; raise ``ValueError`` if it names no real day."""
    year = packed >> _YEAR_SHIFT
    month = (packed >> _MONTH_SHIFT) & 0xF
    day = (packed >> _DAY_SHIFT) & 0x1F
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{packed} is not a Things 3 packed date: {exc}") from None


DDL: Final = """
CREATE TABLE TMArea (
    uuid TEXT PRIMARY KEY,
    title TEXT,
    visible INTEGER,
    "index" INTEGER
);
CREATE TABLE TMTag (
    uuid TEXT PRIMARY KEY,
    title TEXT,
    shortcut TEXT,
    parent TEXT,
    "index" INTEGER
);
CREATE TABLE TMTask (
    uuid TEXT PRIMARY KEY,
    title TEXT,
    notes TEXT,
    type INTEGER,
    status INTEGER,
    trashed INTEGER,
    start INTEGER,
    startDate INTEGER,
    deadline INTEGER,
    stopDate REAL,
    creationDate REAL,
    userModificationDate REAL,
    project TEXT,
    area TEXT,
    heading TEXT,
    todayIndex INTEGER,
    "index" INTEGER
);
CREATE TABLE TMTaskTag (
    tasks TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE TABLE TMChecklistItem (
    uuid TEXT PRIMARY KEY,
    title TEXT,
    status INTEGER,
    stopDate REAL,
    "index" INTEGER,
    task TEXT,
    creationDate REAL,
    userModificationDate REAL
);
"""

# Built after the bulk insert (cheaper than maintaining them row by row), one
# per access path in queries.py: the list views filter on status/trashed/start,
# the logbook sorts on stopDate, projects count their tasks, tags and
# checklists are looked up by their task.
INDEXES: Final = """
CREATE INDEX index_TMTask_lists ON TMTask (status, trashed, start, type);
CREATE INDEX index_TMTask_startDate ON TMTask (startDate);
CREATE INDEX index_TMTask_stopDate ON TMTask (stopDate);
CREATE INDEX index_TMTask_project ON TMTask (project);
CREATE INDEX index_TMTask_area ON TMTask (area);
CREATE INDEX index_TMTaskTag_tasks ON TMTaskTag (tasks);
CREATE INDEX index_TMTaskTag_tags ON TMTaskTag (tags);
CREATE INDEX index_TMChecklistItem_task ON TMChecklistItem (task);
"""
