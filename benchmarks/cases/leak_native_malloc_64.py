"""64 bytes malloc'd through ctypes per call and never freed (the native target)."""

from __future__ import annotations

from benchmarks.cases._native import libc

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "a 64-byte C struct malloc'd via ctypes per call and never freed (the stated native target)"


def step() -> None:
    p = libc.malloc(64)
    libc.memset(p, 1, 64)
