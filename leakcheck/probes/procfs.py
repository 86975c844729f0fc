"""Small ``/proc`` files read on every sample: ``statm`` (resident and mapped), the thread list, ``children``.

Read with ``os.open``/``os.read`` rather than ``open()``: no file object and
buffer to build on every sample, a fraction of the cost.

Within one sample (between :func:`begin_sample` and :func:`end_sample`) each
of ``statm`` and the thread list is read once and shared: ``rss`` and
``mapped`` both read ``statm``, ``os_threads`` and ``children`` both list the
threads. Outside a sample every call reads afresh.
"""

from __future__ import annotations

import os

__all__ = ["STATM", "TASKS", "begin_sample", "end_sample", "read_small", "statm_bytes", "task_ids"]

STATM = "/proc/self/statm"
TASKS = "/proc/self/task"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

#: One sample's readings. Allocated once and only cleared, so that sharing adds no block
#: that the Python-heap measure would count; what it holds is freed when the sample ends.
_memo: dict[str, list[bytes] | list[str]] = {}
_sharing = False


def begin_sample() -> None:
    """Readings from here to :func:`end_sample` are one sample's: each file is read once."""
    global _sharing
    _sharing = True


def end_sample() -> None:
    """The sample is over: the next readings read the files again."""
    global _sharing
    _sharing = False
    _memo.clear()


def read_small(path: str, size: int = 4096) -> bytes:
    """The first ``size`` bytes of ``path`` (OSError if it cannot be opened)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _statm() -> list[bytes]:
    if not _sharing:
        return read_small(STATM, 256).split()
    fields = _memo.get(STATM)
    if fields is None:
        fields = _memo[STATM] = read_small(STATM, 256).split()
    return fields  # type: ignore[return-value]


def statm_bytes(field: int) -> float:
    """Field ``field`` of ``/proc/self/statm`` in bytes: 0 is the virtual size, 1 the resident set."""
    return float(int(_statm()[field]) * _PAGE)


def task_ids() -> list[str]:
    """The ids of this process's threads, as ``/proc/self/task`` lists them."""
    if not _sharing:
        return os.listdir(TASKS)
    tids = _memo.get(TASKS)
    if tids is None:
        tids = _memo[TASKS] = os.listdir(TASKS)
    return tids  # type: ignore[return-value]
