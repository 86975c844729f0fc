"""The memory probes: Python's heap, the C heap, and the process as the OS sees it."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import tracemalloc
from typing import Callable

import psutil

from ..errors import ConfigError
from . import glibc_heap
from .base import Probe
from .procfs import STATM, statm_bytes

__all__ = ["NativeHeap", "PythonBlocks", "ResidentMemory", "TracedBytes", "UniqueMemory"]


class PythonBlocks(Probe):
    """Live pymalloc blocks (``sys.getallocatedblocks()``), what ``regrtest -R`` watches."""

    name = "py_blocks"
    title = "Python heap (live blocks)"
    unit = "blocks"
    default_limit = 0.5  # one small object per iteration is a leak

    def unavailable(self) -> str | None:
        if sys.getallocatedblocks() == 0:
            return "sys.getallocatedblocks() reads 0 (PYTHONMALLOC=malloc?); other measures still apply"
        return None

    def read(self) -> float:
        return sys.getallocatedblocks()


class TracedBytes(Probe):
    """Bytes traced by tracemalloc, when tracemalloc is on (``-X tracemalloc``)."""

    name = "py_traced"
    title = "Python heap (tracemalloc bytes)"
    unit = "B"
    default_limit = 64.0

    def unavailable(self) -> str | None:
        if not tracemalloc.is_tracing():
            return "tracemalloc is off; start it (-X tracemalloc) to use this measure"
        return None

    def read(self) -> float:
        return tracemalloc.get_traced_memory()[0]


#: Set to ``psutil`` to read the native heap through ``psutil.heap_info()`` even
#: where glibc's ``mallinfo2`` is there (the tests prove the fallback this way).
NATIVE_HEAP_ENV = "LEAKCHECK_NATIVE_HEAP"
NATIVE_HEAP_SOURCES = ("auto", "glibc", "psutil")


def _heap_info_reader() -> Callable[[], float] | None:
    """Bytes in use from ``psutil.heap_info()`` (macOS malloc zones, Windows heaps, glibc), or None."""
    heap_info = getattr(psutil, "heap_info", None)
    if heap_info is None:
        return None
    try:
        fields = heap_info()._fields
    except (OSError, psutil.Error, NotImplementedError):
        return None
    # Every field is bytes in use but Windows' count of heaps.
    idx = tuple(i for i, name in enumerate(fields) if name != "heap_count")

    def read() -> float:
        info = heap_info()
        return float(sum(info[i] for i in idx))

    return read


class NativeHeap(Probe):
    """Bytes in use on the C heap (glibc ``mallinfo2``: ``uordblks + hblkhd``).

    Sees what tracemalloc cannot: sqlite's page cache, C extensions, ctypes
    mallocs, and Python objects over 512 bytes (which pymalloc hands to malloc).

    ``mallinfo2`` counts the chunks glibc parks in each thread's cache (its
    tcache, up to ~235 KiB a thread, filling slowly when freed sizes vary) as
    in use, so they are taken out (see :mod:`leakcheck.probes.glibc_heap`):
    the main thread's from the counts at the start of the heap, every other
    Python thread's (aiosqlite's workers, a thread pool's) through libc's
    thread-local pointer to its cache. Where those cannot be read, the
    calling thread's cache is drained instead: every chunk it can hold is
    taken, the reading made, and the chunks freed.

    Off glibc (macOS, musl, Windows) it reads ``psutil.heap_info()`` instead:
    the malloc zones' or heaps' bytes in use, without the tcache correction.
    ``source`` (default: the ``LEAKCHECK_NATIVE_HEAP`` variable, else
    ``"auto"``) forces one way: ``"glibc"`` or ``"psutil"``.
    """

    name = "native_heap"
    title = "Native heap (malloc in use)"
    unit = "B"
    default_limit = 32.0  # a 64-byte malloc per iteration is a leak

    def __init__(self, source: str | None = None) -> None:
        source = source or os.environ.get(NATIVE_HEAP_ENV) or "auto"
        if source not in NATIVE_HEAP_SOURCES:
            raise ConfigError(NATIVE_HEAP_ENV, source, f"expected one of {', '.join(NATIVE_HEAP_SOURCES)}")
        use_psutil = source == "psutil" or (source == "auto" and glibc_heap.MALLINFO2_MISSING is not None)
        self.source = "psutil" if use_psutil else "glibc"
        self._heap_info = _heap_info_reader() if use_psutil else None
        if use_psutil:
            self._missing = (
                None
                if self._heap_info is not None
                else (
                    f"{glibc_heap.MALLINFO2_MISSING or 'glibc mallinfo2 not used'}, and psutil "
                    f"{psutil.__version__} has no heap_info() here (psutil >= 7.1 on macOS, Windows, Linux)"
                )
            )
            return
        self._missing = glibc_heap.MALLINFO2_MISSING
        self._sizes = tuple(size for size in glibc_heap.TCACHE_REQUESTS for _ in range(glibc_heap.tcache_count()))
        self._held = [0] * len(self._sizes)
        # Reading the main thread's tcache counts costs microseconds; draining
        # it costs ~0.5 ms. Use the counts where their layout checks out.
        self._counts = glibc_heap.main_tcache_counts()
        self._others = None if self._counts is None else glibc_heap.ThreadCaches.find(ctypes.addressof(self._counts))
        self._main = threading.main_thread()

    def unavailable(self) -> str | None:
        return self._missing

    def read(self) -> float:
        if self._heap_info is not None:
            return self._heap_info()
        others = 0 if self._others is None else self._others.other_threads()
        counts = self._counts
        if counts is not None and threading.current_thread() is self._main:
            return float(glibc_heap.in_use() - glibc_heap.cached_bytes(counts) - others)
        return self._read_draining() - others

    def _read_draining(self) -> float:
        held = self._held
        for n, size in enumerate(self._sizes):
            held[n] = glibc_heap.malloc(size)
        reading = glibc_heap.in_use()
        for ptr in held:
            glibc_heap.free(ptr)
        return float(reading)


class ResidentMemory(Probe):
    """Resident set size: the backstop for memory a library maps itself."""

    name = "rss"
    title = "Process memory (RSS)"
    unit = "B"
    default_limit = 16 * 1024.0  # page-granular and noisy: only large leaks

    def __init__(self) -> None:
        # /proc/self/statm is one small read; psutil is the way elsewhere.
        self._rss: Callable[[], float]
        if os.path.exists(STATM):
            self._rss = lambda: statm_bytes(1)
        else:
            proc = psutil.Process()
            self._rss = lambda: float(proc.memory_info().rss)

    def read(self) -> float:
        return self._rss()


class UniqueMemory(Probe):
    """Unique set size (memory freed if the process exited); costs ~1 ms, not in the default set."""

    name = "uss"
    title = "Process memory (USS)"
    unit = "B"
    default_limit = 16 * 1024.0

    def __init__(self) -> None:
        self._proc = psutil.Process()

    def unavailable(self) -> str | None:
        try:
            self._proc.memory_full_info()
        except (OSError, psutil.Error) as exc:  # AccessDenied or no support here
            return f"psutil cannot read USS here: {exc}"
        return None

    def read(self) -> float:
        return float(self._proc.memory_full_info().uss)
