"""An async data layer over a Things 3-style SQLite database: the subject under test.

It has the shape of the Things 3 tooling (``things3-core``): a connection
pool over aiosqlite, the app's read queries, a result cache, and the cleanup
paths around them. :mod:`.faults` can switch on, one by one, the ways such a
layer typically leaks, so the leak suites have something real to catch.

Modules: :mod:`.dbgen` (test databases), :mod:`.pool`, :mod:`.queries`,
:mod:`.cache`, :mod:`.faults`, :mod:`.models` (row types), :mod:`.schema`.
"""

from __future__ import annotations

from . import faults, queries
from .cache import QueryCache
from .dbgen import generate, temp_database
from .models import Area, ChecklistItem, Project, Tag, Task, TaskDetail
from .pool import Pool, PoolClosed, PoolError, PoolTimeout

__all__ = [
    "Area",
    "ChecklistItem",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "Project",
    "QueryCache",
    "Tag",
    "Task",
    "TaskDetail",
    "faults",
    "generate",
    "queries",
    "temp_database",
]
