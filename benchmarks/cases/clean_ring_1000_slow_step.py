"""An audit log of the last 1,000 requests, each request taking ~2.5 ms."""

from __future__ import annotations

import collections
import time

LEAKS = False
RESOURCE = None
DESCRIPTION = "deque(maxlen=1000) of records with a 2.5 ms step: a long fill that plateaus"

_recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=1000)
_calls = [0]


def step() -> None:
    _calls[0] += 1
    _recent.append((_calls[0], "GET /tasks 200"))
    time.sleep(0.0025)
