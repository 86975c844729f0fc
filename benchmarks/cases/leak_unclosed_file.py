"""A file read per call and never closed: CPython closes it when dropped, with a ResourceWarning."""

from __future__ import annotations

import os

LEAKS = True
RESOURCE = "unclosed"
DESCRIPTION = "open(path).read() per call, the file left for the garbage collector to close"


def step() -> None:
    open(os.devnull, "rb").read(16)  # noqa: SIM115 - the leak under test: never closed
