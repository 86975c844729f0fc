"""contextvars tokens kept on a long-lived object and never reset."""

from __future__ import annotations

import contextvars

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "contextvar .set() per call, tokens stashed on a long-lived tracker and never .reset()"

request_ctx: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar("request_ctx")


class Tracker:
    def __init__(self) -> None:
        self.tokens: list[contextvars.Token[dict[str, int]]] = []


TRACKER = Tracker()


def step() -> None:
    TRACKER.tokens.append(request_ctx.set({"user": 1}))  # bug: never reset, never dropped
