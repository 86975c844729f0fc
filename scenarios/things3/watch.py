"""Notice when a SQLite database changes on disk, by polling modification times.

Things 3 writes to its database behind a reader's back (the app, its sync),
and there is no portable file-change notification, so readers poll.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Callable, Union

__all__ = ["ChangeCallback", "database_stamp", "poll_for_changes"]

_log = logging.getLogger(__name__)

ChangeCallback = Callable[[], Union[Awaitable[None], None]]
"""Called (and awaited, if it returns an awaitable) after each detected change."""


def database_stamp(path: Path) -> tuple[int | None, ...]:
    """Modification times (ns) of ``path`` and its ``-wal`` file; None where missing.

    In WAL mode a write lands in the -wal file and reaches the main file only
    at the next checkpoint, so the main file's time alone would miss it.
    """
    stamps: list[int | None] = []
    for suffix in ("", "-wal"):
        try:
            stamps.append(os.stat(f"{path}{suffix}").st_mtime_ns)
        except FileNotFoundError:
            stamps.append(None)
    return tuple(stamps)


async def poll_for_changes(path: Path, on_change: ChangeCallback, interval: float) -> None:
    """Call ``on_change`` each time :func:`database_stamp` changes; run until cancelled."""
    last = database_stamp(path)
    while True:
        await asyncio.sleep(interval)
        stamp = database_stamp(path)
        if stamp == last:
            continue
        last = stamp
        try:
            result = on_change()
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - a failing callback must not end the watch
            _log.exception("%s: change callback %r failed", path.name, on_change)
