"""64 bytes malloc'd through ctypes per call and never freed (the native target)."""

from __future__ import annotations

import ctypes
import ctypes.util

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "a 64-byte C struct malloc'd via ctypes per call and never freed (the stated native target)"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def step() -> None:
    p = _libc.malloc(64)
    _libc.memset(p, 1, 64)
