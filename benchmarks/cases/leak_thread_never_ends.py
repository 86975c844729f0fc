"""A worker thread per call that waits forever on an event nobody sets."""

from __future__ import annotations

import threading

LEAKS = True
RESOURCE = "threads"
DESCRIPTION = "a background worker thread started per call, blocked forever on a never-set event"

_stop = threading.Event()


def step() -> None:
    threading.Thread(target=_stop.wait, name="worker", daemon=True).start()
