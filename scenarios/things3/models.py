"""Immutable rows returned by the queries, decoded from Things 3's storage formats.

Each ``from_row`` takes a tuple whose columns are in the order of the
matching ``*_COLUMNS`` constant in :mod:`.queries`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .schema import Start, Status, TaskType, unpack_date

__all__ = ["Area", "ChecklistItem", "Project", "Tag", "Task", "TaskDetail"]

# group_concat() joins tag titles with the ASCII unit separator, a character
# no human-typed tag title contains (a comma could).
TAG_SEPARATOR = "\x1f"


def _date(packed: int | None) -> dt.date | None:
    return None if packed is None else unpack_date(packed)


def _timestamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


@dataclass(frozen=True)
class Task:
    """A row of TMTask: a to-do, a project or a heading, with its tag titles."""

    uuid: str
    title: str
    notes: str
    type: TaskType
    status: Status
    start: Start
    start_date: dt.date | None
    deadline: dt.date | None
    stop_date: dt.datetime | None
    created: dt.datetime
    modified: dt.datetime
    project: str | None
    area: str | None
    heading: str | None
    today_index: int
    index: int
    tags: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Task:
        """Decode a row selected with ``queries.TASK_COLUMNS``."""
        (
            uuid,
            title,
            notes,
            type_,
            status,
            start,
            start_date,
            deadline,
            stop,
            created,
            modified,
            project,
            area,
            heading,
            today_index,
            index,
            tags,
        ) = row
        return cls(
            uuid=uuid,
            title=title,
            notes=notes or "",
            type=TaskType(type_),
            status=Status(status),
            start=Start(start),
            start_date=_date(start_date),
            deadline=_date(deadline),
            stop_date=_timestamp(stop),
            created=_timestamp(created) or dt.datetime.fromtimestamp(0, dt.timezone.utc),
            modified=_timestamp(modified) or dt.datetime.fromtimestamp(0, dt.timezone.utc),
            project=project,
            area=area,
            heading=heading,
            today_index=today_index or 0,
            index=index or 0,
            # Sorted because group_concat() promises no order.
            tags=tuple(sorted(tags.split(TAG_SEPARATOR))) if tags else (),
        )


@dataclass(frozen=True)
class Project:
    """An open project (a TMTask row of type 1) and how many open to-dos it holds."""

    uuid: str
    title: str
    notes: str
    area: str | None
    deadline: dt.date | None
    index: int
    open_tasks: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Project:
        """Decode a row selected with ``queries.PROJECT_COLUMNS``."""
        uuid, title, notes, area, deadline, index, open_tasks = row
        return cls(uuid, title, notes or "", area, _date(deadline), index or 0, open_tasks)


@dataclass(frozen=True)
class Area:
    """A row of TMArea."""

    uuid: str
    title: str
    visible: bool
    index: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Area:
        """Decode a row selected with ``queries.AREA_COLUMNS``."""
        uuid, title, visible, index = row
        return cls(uuid, title, bool(visible), index or 0)


@dataclass(frozen=True)
class Tag:
    """A row of TMTag; ``parent`` is the uuid of the enclosing tag, if nested."""

    uuid: str
    title: str
    shortcut: str | None
    parent: str | None
    index: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Tag:
        """Decode a row selected with ``queries.TAG_COLUMNS``."""
        uuid, title, shortcut, parent, index = row
        return cls(uuid, title, shortcut, parent, index or 0)


@dataclass(frozen=True)
class ChecklistItem:
    """A row of TMChecklistItem: one step inside a to-do."""

    uuid: str
    task: str
    title: str
    status: Status
    stop_date: dt.datetime | None
    index: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ChecklistItem:
        """Decode a row selected with ``queries.CHECKLIST_COLUMNS``."""
        uuid, task, title, status, stop, index = row
        return cls(uuid, task, title, Status(status), _timestamp(stop), index or 0)


@dataclass(frozen=True)
class TaskDetail:
    """A task together with its checklist, in checklist order."""

    task: Task
    checklist: tuple[ChecklistItem, ...]
