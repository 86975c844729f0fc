"""A timeout timer started and cancelled (and joined) each call."""

from __future__ import annotations

import threading

LEAKS = False
RESOURCE = None
DESCRIPTION = "threading.Timer timeout started, then cancelled and joined when the work finishes"


def _expire() -> None:
    pass


def step() -> None:
    t = threading.Timer(3600, _expire)
    t.start()
    sum(range(100))
    t.cancel()
    t.join()
