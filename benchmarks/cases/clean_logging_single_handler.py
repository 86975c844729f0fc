"""A logger configured once, logging per call."""

from __future__ import annotations

import io
import logging

LEAKS = False
RESOURCE = None
DESCRIPTION = "logger configured once (one handler), one record formatted per call into a rotating buffer"

_log = logging.getLogger("bench.single_handler")
_log.propagate = False
_log.setLevel(logging.INFO)
_stream = io.StringIO()
_log.addHandler(logging.StreamHandler(_stream))


def step() -> None:
    _log.info("request served in %d ms", 3)
    if _stream.tell() > 64_000:
        _stream.seek(0)
        _stream.truncate()
