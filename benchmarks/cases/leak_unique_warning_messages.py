"""A warning whose message names the request: each module's __warningregistry__ grows without bound."""

from __future__ import annotations

import warnings

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "warnings.warn(f'... {request_id}') per call under the default filters (bpo-27535)"

_calls = [0]
warnings.simplefilter("default")
warnings.showwarning = lambda *a, **k: None  # the log line is not the point; the registry is


def step() -> None:
    _calls[0] += 1
    warnings.warn(f"request {_calls[0]} retried", UserWarning, stacklevel=1)
