"""A file opened, read and closed each call."""

from __future__ import annotations

import os

LEAKS = False
RESOURCE = None
DESCRIPTION = "open / read / close of a file per call (with-statement)"


def step() -> None:
    with open(os.devnull, "rb") as fh:
        fh.read(16)
