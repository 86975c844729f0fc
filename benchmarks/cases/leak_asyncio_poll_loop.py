"""A poll loop that waits on a queue with a timeout and leaves the getter pending.

The classic ``asyncio.wait({queue.get()}, timeout=...)`` bug: on timeout the
``queue.get()`` task is neither cancelled nor reused, so every poll leaves one
more pending task (and waiter future) behind.
"""

from __future__ import annotations

import asyncio

LEAKS = True
RESOURCE = "tasks"
DESCRIPTION = "poll loop: asyncio.wait({create_task(queue.get())}, timeout=0) leaves a pending getter per poll"


async def setup() -> asyncio.Queue[int]:
    return asyncio.Queue()


async def step(queue: asyncio.Queue[int]) -> None:
    getter = asyncio.get_running_loop().create_task(queue.get())
    _done, _pending = await asyncio.wait({getter}, timeout=0)
    # bug: `_pending` is dropped, the getter task stays pending forever
