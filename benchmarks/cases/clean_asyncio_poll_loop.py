"""A poll loop that cancels and awaits the pending getter on timeout."""

from __future__ import annotations

import asyncio
import contextlib

LEAKS = False
RESOURCE = None
DESCRIPTION = "poll loop with asyncio.wait(timeout=0) that cancels and awaits the pending getter"


async def setup() -> asyncio.Queue[int]:
    return asyncio.Queue()


async def step(queue: asyncio.Queue[int]) -> None:
    getter = asyncio.get_running_loop().create_task(queue.get())
    _done, pending = await asyncio.wait({getter}, timeout=0)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
