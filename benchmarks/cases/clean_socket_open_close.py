"""A socket pair opened, used and closed each call."""

from __future__ import annotations

import socket

LEAKS = False
RESOURCE = None
DESCRIPTION = "socketpair send/recv/close per call"


def step() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"ping")
        b.recv(4)
