"""A timeout timer started per call and never cancelled."""

from __future__ import annotations

import threading

LEAKS = True
RESOURCE = "threads"
DESCRIPTION = "threading.Timer(3600, ...) started per request as a timeout and never cancelled"


def _expire() -> None:
    pass


def step() -> None:
    t = threading.Timer(3600, _expire)
    t.daemon = True
    t.start()
