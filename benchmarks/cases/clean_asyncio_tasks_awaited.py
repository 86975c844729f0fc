"""asyncio tasks created and awaited (gathered) each call."""

from __future__ import annotations

import asyncio

LEAKS = False
RESOURCE = None
DESCRIPTION = "asyncio.gather over 5 short tasks per call, all awaited"


async def _fetch(i: int) -> int:
    await asyncio.sleep(0)
    return i


async def step() -> None:
    await asyncio.gather(*(_fetch(i) for i in range(5)))
