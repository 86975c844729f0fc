"""An lru_cache(maxsize=128) fed ever-new keys: it fills, then evicts (plateau)."""

from __future__ import annotations

import functools
import itertools

LEAKS = False
RESOURCE = None
DESCRIPTION = "functools.lru_cache(maxsize=128) with new keys: grows for 128 calls, then flat"

_keys = itertools.count()


@functools.lru_cache(maxsize=128)
def render(key: int) -> str:
    return f"<li>{key}</li>" * 4


def step() -> None:
    render(next(_keys))
