"""A logging handler added to a module logger on every call."""

from __future__ import annotations

import io
import logging

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "logger.addHandler(StreamHandler(...)) inside the function that logs: one handler per call"

_log = logging.getLogger("bench.handler_per_call")
_log.propagate = False
_log.setLevel(logging.INFO)


def step() -> None:
    handler = logging.StreamHandler(io.StringIO())  # bug: configured per call
    _log.addHandler(handler)
    _log.debug("request served")
