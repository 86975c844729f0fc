"""A module-level cache keyed by value (not by self), bounded: look-alike of the method cache leak."""

from __future__ import annotations

import functools

LEAKS = False
RESOURCE = None
DESCRIPTION = "lru_cache(maxsize=64) on a module function keyed by config values; new Service per call"


@functools.lru_cache(maxsize=64)
def _timeout(base: float) -> float:
    return base * 2


class Service:
    def __init__(self) -> None:
        self.config = {"retries": 3, "timeout": 1.5}

    def timeout(self) -> float:
        return _timeout(self.config["timeout"])


def step() -> None:
    Service().timeout()
