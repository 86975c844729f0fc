"""Fixtures for the Things 3 leak suites.

``things3_db`` is generated once per session (so once per pytest-xdist
worker) and deleted at the end; ``THINGS3_TASKS`` sets its size. ``pool`` is a
fresh :class:`~scenarios.things3.Pool` per test, closed at teardown, and
``faults`` switches faults on for one test.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from scenarios.things3 import Pool
from scenarios.things3 import faults as things3_faults
from scenarios.things3.dbgen import temp_database

TASKS_ENV_VAR = "THINGS3_TASKS"
DEFAULT_TASKS = 50_000


def _tasks_from_env() -> int:
    raw = os.environ.get(TASKS_ENV_VAR, "")
    if not raw.strip():
        return DEFAULT_TASKS
    try:
        tasks = int(raw)
    except ValueError:
        tasks = -1
    if tasks < 1:
        raise pytest.UsageError(
            f"${TASKS_ENV_VAR}={raw!r} is not a positive whole number of tasks;"
            f" unset it for the default of {DEFAULT_TASKS}"
        )
    return tasks


@pytest.fixture(scope="session")
def things3_db() -> Iterator[Path]:
    """Path of a generated Things 3 database, shared by the session (or xdist worker)."""
    with temp_database(tasks=_tasks_from_env()) as path:
        yield path


@pytest.fixture(scope="session")
def checklist_task(things3_db: Path) -> str:
    """The uuid of a task in ``things3_db`` that has checklist items."""
    with contextlib.closing(sqlite3.connect(things3_db)) as conn:
        row = conn.execute("SELECT task FROM TMChecklistItem ORDER BY task LIMIT 1").fetchone()
    if row is None:
        pytest.skip(f"no task with a checklist in a database of ${TASKS_ENV_VAR} tasks")
    return str(row[0])


@pytest_asyncio.fixture
async def pool(things3_db: Path) -> AsyncIterator[Pool]:
    """A connection pool over ``things3_db``, closed when the test ends."""
    pool = await Pool.open(things3_db)
    try:
        yield pool
    finally:
        await pool.close()


class FaultSwitch:
    """Switches faults on until the end of the test that asked for it."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack

    def on(self, *names: str) -> None:
        """Switch the named faults on; an unknown name raises ``UnknownFaultError``."""
        self._stack.enter_context(things3_faults.inject(*names))

    @property
    def active(self) -> frozenset[str]:
        """Every fault switched on now, here or through ``$THINGS3_FAULTS``."""
        return things3_faults.active()


@pytest.fixture
def faults() -> Iterator[FaultSwitch]:
    """Switch faults on for this test: ``faults.on("unclosed_cursor")``."""
    with contextlib.ExitStack() as stack:
        yield FaultSwitch(stack)
