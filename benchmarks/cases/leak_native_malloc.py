"""256 bytes malloc'd through ctypes per call and never freed."""

from __future__ import annotations

from benchmarks.cases._native import libc

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "a C buffer (256 B) malloc'd via ctypes per call and never freed"


def step() -> None:
    p = libc.malloc(256)
    libc.memset(p, 1, 256)
