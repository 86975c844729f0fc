"""aiosqlite connect / query / close per call (its worker thread is joined lazily)."""

from __future__ import annotations

import aiosqlite

LEAKS = False
RESOURCE = None
DESCRIPTION = "aiosqlite connect/query/close per call; >=0.21 lets the worker thread finish after close()"


async def step() -> None:
    async with aiosqlite.connect(":memory:") as db, db.execute("SELECT 1") as cur:
        await cur.fetchone()
