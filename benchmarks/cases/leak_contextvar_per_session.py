"""A context variable set once per session (every 10th request) and never reset."""

from __future__ import annotations

import contextvars

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "one small object kept every 10th call (a per-session value never reset): 0.1 blocks/iteration"

session: contextvars.ContextVar[object] = contextvars.ContextVar("session")
_tokens: list[contextvars.Token[object]] = []
_calls = [0]


def step() -> None:
    _calls[0] += 1
    if _calls[0] % 10 == 0:  # a new session starts
        _tokens.append(session.set(object()))  # bug: the token (and the old value) is never reset
