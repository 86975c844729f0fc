"""A bounded ring buffer of recent events (deque with maxlen)."""

from __future__ import annotations

import collections

LEAKS = False
RESOURCE = None
DESCRIPTION = "bounded ring: collections.deque(maxlen=300) of recent events"

_recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=300)


def step() -> None:
    _recent.append((len(_recent), "event" * 4))
