"""A callback registered per call on a long-lived event bus, never unregistered."""

from __future__ import annotations

LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "per-request listener (a closure over the request) subscribed to an app-wide bus, never removed"


class Bus:
    def __init__(self) -> None:
        self.listeners: list[object] = []

    def subscribe(self, fn: object) -> None:
        self.listeners.append(fn)


BUS = Bus()


class Request:
    def __init__(self) -> None:
        self.headers = {"accept": "*/*"}

    def on_shutdown(self) -> None:
        self.headers.clear()


def step() -> None:
    req = Request()
    BUS.subscribe(req.on_shutdown)  # bug: never unsubscribed
