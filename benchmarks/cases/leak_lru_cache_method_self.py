"""``functools.lru_cache`` on a method: the cache holds every instance (self) alive."""

from __future__ import annotations

import functools

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "@lru_cache(maxsize=None) on a method; a new instance per call is kept alive by the cache"


class Service:
    def __init__(self) -> None:
        self.config = {"retries": 3, "timeout": 1.5}

    @functools.lru_cache(maxsize=None)  # noqa: B019, UP033 - the leak under test, spelled as users write it
    def timeout(self) -> float:
        return self.config["timeout"] * 2


def step() -> None:
    Service().timeout()
