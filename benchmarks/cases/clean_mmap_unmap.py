"""A 64 KiB anonymous mapping per call, one page touched, then unmapped."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap

LEAKS = False
RESOURCE = None
DESCRIPTION = "mmap / touch / munmap of a 64 KiB block per call"

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_SIZE = 64 * 1024


def step() -> None:
    addr = _LIBC.mmap(None, _SIZE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    ctypes.memset(addr, 1, 1)
    _LIBC.munmap(addr, _SIZE)
