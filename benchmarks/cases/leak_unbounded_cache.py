"""A memo dict keyed by an ever-new request id: a cache with no bound."""

from __future__ import annotations

import itertools

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "memoisation keyed by a per-request id: the cache never hits and never evicts"

_ids = itertools.count()
_cache: dict[str, tuple[int, str]] = {}


def lookup(key: str) -> tuple[int, str]:
    if key not in _cache:
        _cache[key] = (len(key), key.upper())
    return _cache[key]


def step() -> None:
    lookup(f"request-{next(_ids)}")
