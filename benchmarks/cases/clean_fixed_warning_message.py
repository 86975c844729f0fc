"""The same warning on every call: the registry keeps one entry."""

from __future__ import annotations

import warnings

LEAKS = False
RESOURCE = None
DESCRIPTION = "warnings.warn('request retried') per call under the default filters: one registry entry"

warnings.simplefilter("default")
warnings.showwarning = lambda *a, **k: None


def step() -> None:
    warnings.warn("request retried", UserWarning, stacklevel=1)
