"""A 20 MB buffer allocated, touched and freed each call."""

from __future__ import annotations

LEAKS = False
RESOURCE = None
DESCRIPTION = "20 MB bytearray allocated, written and freed each call (mmap'd, RSS jumps and returns)"


def step() -> None:
    buf = bytearray(20 * 1024 * 1024)
    buf[::4096] = b"x" * len(buf[::4096])
    del buf
