"""A 64 KiB anonymous mapping per call, one page touched, never unmapped."""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import mmap

LEAKS = True
RESOURCE = "mapped"
DESCRIPTION = "a C extension's mmap'd block per call (64 KiB, one page written) never unmapped"

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_SIZE = 64 * 1024
# Addresses in a preallocated array: only the mapping grows.
_kept = array.array("Q", bytes(8 * 100_000))
_count = [0]


def step() -> None:
    addr = _LIBC.mmap(None, _SIZE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    ctypes.memset(addr, 1, 1)
    _kept[_count[0] % len(_kept)] = addr
    _count[0] += 1
