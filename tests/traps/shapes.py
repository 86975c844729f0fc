"""Hard shapes of growth (issue 11): stairs, slow leaks, late leaks, long fills, warnings.

Each leak has a clean twin that looks the same for a while and must pass.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import time
import warnings

from .leaks import Trap

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]

STAIR = 256 * 1024  #: what a decompressor's error path lost, per failure


def stairs(every: int, *, back_every: int = 0) -> Trap:
    """256 KiB of native memory lost every ``every``-th call; freed every ``back_every``-th, if set."""
    calls = [0]
    kept: list[int] = []

    def step() -> None:
        calls[0] += 1
        if calls[0] % every == 0:
            p = _libc.malloc(STAIR)
            _libc.memset(p, 1, STAIR)
            kept.append(p)
        if back_every and calls[0] % back_every == 0:
            free_all()

    def free_all(*_: object) -> None:
        while kept:
            _libc.free(kept.pop())

    name = f"stairs_{every}" + (f"_back_{back_every}" if back_every else "")
    return Trap(name, step, teardown=free_all, measure="native_heap")


def one_in(every: int, *, cap: int = 0) -> Trap:
    """One small object kept every ``every``-th call; with ``cap``, a cache that stops at ``cap`` entries."""
    calls = [0]
    kept: dict[int, object] = {}

    def step() -> None:
        calls[0] += 1
        if calls[0] % every == 0 and (not cap or len(kept) < cap):
            kept[calls[0]] = object()

    name = f"one_in_{every}" + (f"_up_to_{cap}" if cap else "")
    return Trap(name, step, measure="py_blocks")


def late_leak(flat: int) -> Trap:
    """A pool that is fine for ``flat`` calls, then keeps a record per call once exhausted."""
    calls = [0]
    kept: list[tuple[int, object]] = []

    def step() -> None:
        calls[0] += 1
        if calls[0] > flat:
            kept.append((calls[0], object()))

    return Trap(f"late_leak_{flat}", step, measure="py_blocks")


def slow_ring(size: int, delay: float) -> Trap:
    """A ring of ``size`` recent records with a slow step: it fills for ``size`` calls, then stays."""
    ring: collections.deque[tuple[int, str]] = collections.deque(maxlen=size)
    calls = [0]

    def step() -> None:
        calls[0] += 1
        ring.append((calls[0], "record"))
        time.sleep(delay)

    return Trap(f"ring_{size}", step)


def warning_per_call(*, unique: bool) -> Trap:
    """A UserWarning per call, its text new on every call or always the same."""
    calls = [0]

    def step() -> None:
        calls[0] += 1
        text = f"retrying request {calls[0]}" if unique else "retrying request"
        warnings.warn(text, UserWarning, stacklevel=1)

    return Trap("unique_warning" if unique else "fixed_warning", step, measure="py_blocks")
