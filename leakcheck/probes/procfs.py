"""Small ``/proc`` files read on every sample: ``statm`` (resident and mapped) and ``children``.

Read with ``os.open``/``os.read`` rather than ``open()``: no file object and
buffer to build on every sample, a fraction of the cost.
"""

from __future__ import annotations

import os

__all__ = ["STATM", "read_small", "statm_bytes"]

STATM = "/proc/self/statm"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_small(path: str, size: int = 4096) -> bytes:
    """The first ``size`` bytes of ``path`` (OSError if it cannot be opened)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def statm_bytes(field: int) -> float:
    """Field ``field`` of ``/proc/self/statm`` in bytes: 0 is the virtual size, 1 the resident set."""
    return float(int(read_small(STATM, 256).split()[field]) * _PAGE)
