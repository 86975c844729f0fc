"""A writer that buffers 256 KiB natively every 100th call and flushes the batch every 500th."""

from __future__ import annotations

from benchmarks.cases._native import libc

LEAKS = False
RESOURCE = None
DESCRIPTION = "256 KiB native buffer kept every 100th call, all freed every 500th: stairs that come back down"

_calls = [0]
_batch: list[int] = []


def step() -> None:
    _calls[0] += 1
    if _calls[0] % 100 == 0:
        p = libc.malloc(256 * 1024)
        libc.memset(p, 1, 256 * 1024)
        _batch.append(p)
    if _calls[0] % 500 == 0:
        while _batch:
            libc.free(_batch.pop())
