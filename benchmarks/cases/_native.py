"""libc through ctypes for the native-heap cases, and the error-path step they vary.

A module whose name starts with ``_`` is not a case (:func:`benchmarks.corpus.case_paths`
skips it); the case subprocesses run with the repository on ``PYTHONPATH``, so a
case imports it as ``benchmarks.cases._native``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Callable

__all__ = ["error_path_step", "libc"]

#: ``malloc``, ``memset`` and ``free`` typed, so that 64-bit pointers are not truncated to ``int``.
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


def error_path_step(every: int) -> Callable[[], None]:
    """A decompressor's step: a 4 KiB buffer freed each call, and 256 KiB lost on every ``every``-th call."""
    calls = [0]

    def step() -> None:
        calls[0] += 1
        buf = libc.malloc(4096)  # the happy path's buffer, freed below
        if calls[0] % every == 0:
            lost = libc.malloc(256 * 1024)
            libc.memset(lost, 1, 256 * 1024)  # the error path returns early and never frees it
        libc.memset(buf, 0, 4096)
        libc.free(buf)

    return step
