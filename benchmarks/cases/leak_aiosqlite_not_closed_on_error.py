"""aiosqlite connection closed only on the happy path.

Real-world pattern: ``db = await aiosqlite.connect(...)``, a query raises,
the ``except`` logs and returns, and ``await db.close()`` is never reached.
Each failed request leaves the connection's worker thread (and its sqlite
handle) alive.
"""

from __future__ import annotations

import aiosqlite

LEAKS = True
RESOURCE = "threads"
DESCRIPTION = "aiosqlite: connection closed only on success; a failing query leaks its worker thread"


async def step() -> None:
    try:
        db = await aiosqlite.connect(":memory:")
        await db.execute("SELECT * FROM missing_table")
        await db.close()
    except aiosqlite.OperationalError:
        pass  # bug: db is never closed on this path
