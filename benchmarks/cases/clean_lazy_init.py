"""A module-level table built on first use, then only read."""

from __future__ import annotations

LEAKS = False
RESOURCE = None
DESCRIPTION = "lazy init: a 50k-entry lookup table built on the first call, reused after"

_table: dict[int, str] | None = None


def step() -> None:
    global _table
    if _table is None:
        _table = {i: str(i) for i in range(50_000)}
    _table.get(123)
