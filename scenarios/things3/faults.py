"""Switchable leaks, each woven into the real code path it corrupts.

Every fault is a known way a layer like this one leaks. The code that would
leak asks :func:`enabled` at the exact line where the mistake would be made,
under a ``# FAULT(name)`` comment, so a leak report that points at that line
points at the cause.

Faults are switched on in two ways, which combine:

* the environment variable ``THINGS3_FAULTS`` (comma-separated names), read at
  call time so a test run can change it without re-importing anything;
* :func:`inject`, a context manager for tests: ``with inject("unclosed_cursor"):``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from typing import Final

__all__ = [
    "CATALOGUE",
    "ENV_VAR",
    "UnknownFaultError",
    "active",
    "enabled",
    "inject",
    "parse",
]

ENV_VAR: Final = "THINGS3_FAULTS"

CATALOGUE: Final[Mapping[str, str]] = {
    "lost_connection_on_error": (
        "Pool.acquire() never releases a connection whose block raised: it stays checked"
        " out for ever, with its worker thread and file descriptor"
    ),
    "unclosed_cursor": ("queries keep every cursor in a module-level list and never close it"),
    "unbounded_cache": ("QueryCache puts a per-call value in its keys and ignores max_entries"),
    "temp_db_not_deleted": ("temp_database() leaves the database, its WAL/SHM files and its directory behind"),
    "close_forgets_idle": ("Pool.close() closes only checked-out connections; idle ones stay open"),
    "warmer_never_stopped": ("QueryCache.close() drops its warming task instead of cancelling it"),
    "dropped_poll_task": ("Pool.watch_for_changes() drops its polling task, so Pool.close() never cancels it"),
}

# Nesting counts rather than a set, so overlapping inject() blocks for the same
# fault do not switch it off when the inner one exits.
_injected: collections.Counter[str] = collections.Counter()


class UnknownFaultError(ValueError):
    """A fault name that is not in :data:`CATALOGUE`.

    ``name`` is the offending name and ``source`` says where it came from.
    """

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        valid = ", ".join(sorted(CATALOGUE))
        super().__init__(f"unknown fault {name!r} in {source}; valid faults are: {valid}")


def _check(name: str, source: str) -> str:
    if name not in CATALOGUE:
        raise UnknownFaultError(name, source)
    return name


# The environment is re-read on every call; parsing is cached per distinct
# value so the hot paths that ask enabled() pay for a dict lookup, not a split.
@functools.lru_cache(maxsize=8)
def parse(spec: str) -> frozenset[str]:
    """Parse a ``THINGS3_FAULTS``-style list; raise :class:`UnknownFaultError` on a bad name."""
    names = (part.strip() for part in spec.split(","))
    return frozenset(_check(name, f"${ENV_VAR}={spec!r}") for name in names if name)


def active() -> frozenset[str]:
    """The faults switched on right now, from the environment and from :func:`inject`."""
    from_env = parse(os.environ.get(ENV_VAR, ""))
    return from_env | {name for name, depth in _injected.items() if depth > 0}


def enabled(name: str) -> bool:
    """Whether fault ``name`` is switched on; raise :class:`UnknownFaultError` if it is no fault."""
    _check(name, "faults.enabled()")
    return _injected[name] > 0 or name in parse(os.environ.get(ENV_VAR, ""))


@contextlib.contextmanager
def inject(*names: str) -> Iterator[None]:
    """Switch the named faults on for the duration of the ``with`` block."""
    for name in names:
        _check(name, "faults.inject()")
    _injected.update(names)
    try:
        yield
    finally:
        _injected.subtract(names)
        for name in names:
            if _injected[name] <= 0:
                del _injected[name]
