"""A loop timer per call that is never cancelled."""

from __future__ import annotations

import asyncio

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "loop.call_later(3600, cb) per request for a timeout, handle dropped, never cancelled"


def _timeout(request_id: int) -> None:
    pass


async def step() -> None:
    asyncio.get_running_loop().call_later(3600, _timeout, 42)
