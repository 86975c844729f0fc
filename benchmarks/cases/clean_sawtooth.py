"""A batch buffer that grows to 100 items and is then flushed."""

from __future__ import annotations

LEAKS = False
RESOURCE = None
DESCRIPTION = "sawtooth: a write-behind batch grows to 100 records, then is flushed"

_batch: list[dict[str, int]] = []


def step() -> None:
    _batch.append({"id": len(_batch), "value": 1})
    if len(_batch) >= 100:
        _batch.clear()
