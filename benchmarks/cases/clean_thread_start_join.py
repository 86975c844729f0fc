"""A worker thread started and joined each call."""

from __future__ import annotations

import threading

LEAKS = False
RESOURCE = None
DESCRIPTION = "threading.Thread started and joined per call"


def step() -> None:
    t = threading.Thread(target=sum, args=(range(100),), name="short-worker")
    t.start()
    t.join()
