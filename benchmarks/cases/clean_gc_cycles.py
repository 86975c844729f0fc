"""Reference cycles built and dropped each call: freed only when the cyclic GC runs."""

from __future__ import annotations

LEAKS = False
RESOURCE = None
DESCRIPTION = "gc cycles: parent<->child graphs dropped each call, reclaimed by the cyclic collector"


class Node:
    def __init__(self, parent: Node | None = None) -> None:
        self.parent = parent
        self.children: list[Node] = []
        if parent is not None:
            parent.children.append(self)


def step() -> None:
    root = Node()
    for _ in range(20):
        Node(root)
