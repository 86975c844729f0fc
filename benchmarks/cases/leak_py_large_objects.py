"""A 100 KB bytes object per call kept alive (allocated by malloc, not pymalloc)."""

from __future__ import annotations

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "a 100 KB payload per call kept in a history list (large objects bypass pymalloc)"

_history: list[bytes] = []


def step() -> None:
    _history.append(bytes(100_000))
