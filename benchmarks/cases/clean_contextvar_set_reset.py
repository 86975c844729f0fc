"""contextvars set and reset around each request."""

from __future__ import annotations

import contextvars

LEAKS = False
RESOURCE = None
DESCRIPTION = "contextvar .set() / .reset(token) around each call (look-alike of the token leak)"

request_ctx: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar("request_ctx_clean")


def step() -> None:
    token = request_ctx.set({"user": 1})
    try:
        request_ctx.get()["user"] += 1
    finally:
        request_ctx.reset(token)
