"""A 20 MB mapping (the mmap module) written and closed each call."""

from __future__ import annotations

import mmap

LEAKS = False
RESOURCE = None
DESCRIPTION = "a 20 MB scratch mapping per call, one byte a page written, closed"


def step() -> None:
    with mmap.mmap(-1, 20 * 1000 * 1000) as m:
        m[::4096] = b"x" * len(range(0, len(m), 4096))
