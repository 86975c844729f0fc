"""A cache of recent sessions: one entry every 10th call, up to 300, then it stops growing."""

from __future__ import annotations

LEAKS = False
RESOURCE = None
DESCRIPTION = "a cache filled with one entry every 10th call up to 300 entries (3,000 calls), then full"

_cache: dict[int, object] = {}
_calls = [0]


def step() -> None:
    _calls[0] += 1
    if _calls[0] % 10 == 0 and len(_cache) < 300:
        _cache[_calls[0]] = object()
