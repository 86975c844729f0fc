"""A C buffer malloc'd and freed through ctypes each call."""

from __future__ import annotations

from benchmarks.cases._native import libc

LEAKS = False
RESOURCE = None
DESCRIPTION = "ctypes malloc(4096) / memset / free per call"


def step() -> None:
    p = libc.malloc(4096)
    libc.memset(p, 1, 4096)
    libc.free(p)
