"""Caught exceptions summarised as strings in a bounded list (frames released)."""

from __future__ import annotations

import collections

LEAKS = False
RESOURCE = None
DESCRIPTION = "except Exception as e: keep str(e) in a deque(maxlen=50) - look-alike of the traceback leak"

errors: collections.deque[str] = collections.deque(maxlen=50)


def parse(payload: bytes) -> int:
    buffer = bytearray(payload)
    raise ValueError(f"bad payload of {len(buffer)} bytes")


def step() -> None:
    try:
        parse(b"x" * 2048)
    except ValueError as e:
        errors.append(str(e))
