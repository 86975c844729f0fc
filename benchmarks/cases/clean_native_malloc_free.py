"""A C buffer malloc'd and freed through ctypes each call."""

from __future__ import annotations

import ctypes
import ctypes.util

LEAKS = False
RESOURCE = None
DESCRIPTION = "ctypes malloc(4096) / memset / free per call"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def step() -> None:
    p = _libc.malloc(4096)
    _libc.memset(p, 1, 4096)
    _libc.free(p)
