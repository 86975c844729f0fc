"""A temp file written and deleted each call."""

from __future__ import annotations

import tempfile

LEAKS = False
RESOURCE = None
DESCRIPTION = "NamedTemporaryFile written and deleted on close per call"


def step() -> None:
    with tempfile.NamedTemporaryFile(prefix="export-", suffix=".csv") as fh:
        fh.write(b"a,b\n1,2\n")
        fh.flush()
