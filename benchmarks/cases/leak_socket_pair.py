"""A socket pair per call, kept in a registry and never closed."""

from __future__ import annotations

import socket

LEAKS = True
RESOURCE = "fds"
DESCRIPTION = "a socketpair per 'connection' registered in a dict and never closed"

_conns: dict[int, tuple[socket.socket, socket.socket]] = {}


def step() -> None:
    a, b = socket.socketpair()
    _conns[a.fileno()] = (a, b)
