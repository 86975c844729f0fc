"""An asyncio task per call that is never awaited nor cancelled."""

from __future__ import annotations

import asyncio

LEAKS = True
RESOURCE = "tasks"
DESCRIPTION = "fire-and-forget asyncio task per call (sleeps an hour), never awaited or cancelled"


async def step() -> None:
    asyncio.get_running_loop().create_task(asyncio.sleep(3600))
