"""256 bytes malloc'd through ctypes per call and never freed."""

from __future__ import annotations

import ctypes
import ctypes.util

LEAKS = True
RESOURCE = "native_heap"
DESCRIPTION = "a C buffer (256 B) malloc'd via ctypes per call and never freed"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def step() -> None:
    p = _libc.malloc(256)
    _libc.memset(p, 1, 256)
