"""aiosqlite: a failing query inside ``async with`` - the connection is closed anyway."""

from __future__ import annotations

import aiosqlite

LEAKS = False
RESOURCE = None
DESCRIPTION = "aiosqlite failing query inside `async with`: closed on the error path (look-alike of the leak)"


async def step() -> None:
    try:
        async with aiosqlite.connect(":memory:") as db:
            await db.execute("SELECT * FROM missing_table")
    except aiosqlite.OperationalError:
        pass
