"""One small object per call appended to a module-level list."""

from __future__ import annotations

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "one small object per call kept in a module-level list (the smallest Python-heap leak)"

_kept: list[object] = []


def step() -> None:
    _kept.append(object())
