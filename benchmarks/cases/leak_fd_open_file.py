"""A file opened per call and kept open (kept referenced, so GC never closes it)."""

from __future__ import annotations

import os

LEAKS = True
RESOURCE = "fds"
DESCRIPTION = "a log file opened per call and kept in a list, never closed"

_open: list[object] = []


def step() -> None:
    _open.append(open(os.devnull, "rb"))  # noqa: SIM115 - the leak under test
