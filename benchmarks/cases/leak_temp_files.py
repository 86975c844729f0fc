"""A temp file created per call, closed but never deleted."""

from __future__ import annotations

import os
import tempfile

LEAKS = True
RESOURCE = "files"
DESCRIPTION = "tempfile.mkstemp() per export, fd closed but the file never unlinked"


def step() -> None:
    fd, _path = tempfile.mkstemp(prefix="export-", suffix=".csv")
    os.write(fd, b"a,b\n1,2\n")
    os.close(fd)
