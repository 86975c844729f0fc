"""Caught exceptions kept in a list: their tracebacks keep frames (and locals) alive."""

from __future__ import annotations

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "except Exception as e: errors.append(e) - each traceback keeps a frame with a 2 KB local alive"

errors: list[BaseException] = []


def parse(payload: bytes) -> int:
    buffer = bytearray(payload)  # a local kept alive by the traceback's frame
    raise ValueError(f"bad payload of {len(buffer)} bytes")


def step() -> None:
    try:
        parse(b"x" * 2048)
    except ValueError as e:
        errors.append(e)  # bug: keeps e.__traceback__ and its frames
