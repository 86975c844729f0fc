"""Cheap per-iteration readings, one small class per measure.

Each probe has a ``name`` (used in settings and results), a ``title`` for
people, a ``unit`` (``"B"`` for bytes, else a count unit), a default limit
(growth per iteration tolerated before an unbounded trend fails the check)
and a ``read()`` that costs microseconds. ``unavailable()`` returns a reason
when the probe cannot work here (no glibc, no tracemalloc, no event loop).

Readings must not allocate anything that outlives the call: the runner
stores them in preallocated arrays so the harness never reads as a leak.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
import threading
import tracemalloc
from collections.abc import Sequence
from typing import Callable, ClassVar

from . import glibc_heap
from .errors import ConfigError

__all__ = [
    "DEFAULT_PROBES",
    "PROBES",
    "AsyncioTasks",
    "ChildProcesses",
    "CreatedFiles",
    "FileDescriptors",
    "NativeHeap",
    "OSThreads",
    "Probe",
    "PythonBlocks",
    "PythonThreads",
    "ResidentMemory",
    "TracedBytes",
    "UniqueMemory",
    "make_probes",
]


class Probe:
    """One measure read after every sampled iteration."""

    name: ClassVar[str]
    title: ClassVar[str]
    unit: ClassVar[str]
    default_limit: ClassVar[float]
    #: True for counts of handles (fds, threads, ...): exact small integers, no noise
    is_handle: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """Why this probe cannot be read here, or ``None`` when it can."""
        return None

    def read(self) -> float:
        """The current reading."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<probe {self.name}>"


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


class NativeHeap(Probe):
    """Bytes in use on the C heap (glibc ``mallinfo2``: ``uordblks + hblkhd``).

    Sees what tracemalloc cannot: sqlite's page cache, C extensions, ctypes
    mallocs, and Python objects over 512 bytes (which pymalloc hands to malloc).

    ``mallinfo2`` counts the chunks glibc parks in each thread's cache (its
    tcache, up to ~235 KiB a thread, filling slowly when freed sizes vary) as
    in use, so they are taken out (see :mod:`leakcheck.glibc_heap`): the
    main thread's from the counts at the start of the heap, every other
    Python thread's (aiosqlite's workers, a thread pool's) through libc's
    thread-local pointer to its cache. Where those cannot be read, the
    calling thread's cache is drained instead: every chunk it can hold is
    taken, the reading made, and the chunks freed.
    """

    name = "native_heap"
    title = "Native heap (malloc in use)"
    unit = "B"
    default_limit = 32.0  # a 64-byte malloc per iteration is a leak

    def __init__(self) -> None:
        self._sizes = tuple(size for size in glibc_heap.TCACHE_REQUESTS for _ in range(glibc_heap.tcache_count()))
        self._held = [0] * len(self._sizes)
        # Reading the main thread's tcache counts costs microseconds; draining
        # it costs ~0.5 ms. Use the counts where their layout checks out.
        self._counts = glibc_heap.main_tcache_counts()
        self._others = (
            None if self._counts is None else glibc_heap.ThreadCaches.find(ctypes.addressof(self._counts))
        )
        self._main = threading.main_thread()

    def unavailable(self) -> str | None:
        return glibc_heap.MALLINFO2_MISSING

    def read(self) -> float:
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


def _statm_rss_bytes() -> float:
    with open("/proc/self/statm", "rb") as fh:
        return float(int(fh.read().split()[1]) * _PAGE)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ResidentMemory(Probe):
    """Resident set size: the backstop for memory a library maps itself."""

    name = "rss"
    title = "Process memory (RSS)"
    unit = "B"
    default_limit = 16 * 1024.0  # page-granular and noisy: only large leaks

    def __init__(self) -> None:
        if os.path.exists("/proc/self/statm"):
            self.read = _statm_rss_bytes  # type: ignore[method-assign]
        else:
            import psutil

            proc = psutil.Process()
            self.read = lambda: float(proc.memory_info().rss)  # type: ignore[method-assign]


class UniqueMemory(Probe):
    """Unique set size (memory freed if the process exited); costs ~1 ms, not in the default set."""

    name = "uss"
    title = "Process memory (USS)"
    unit = "B"
    default_limit = 16 * 1024.0

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()

    def unavailable(self) -> str | None:
        try:
            self._proc.memory_full_info()
        except (OSError, self._psutil.Error) as exc:  # AccessDenied or no support here
            return f"psutil cannot read USS here: {exc}"
        return None

    def read(self) -> float:
        return float(self._proc.memory_full_info().uss)


def _entry_counter(proc_dir: str, psutil_method: str) -> Callable[[], float]:
    """Count the entries of ``proc_dir`` (Linux); elsewhere ask psutil's ``Process.<psutil_method>()``."""
    if os.path.isdir(proc_dir):
        return lambda: float(len(os.listdir(proc_dir)))
    import psutil

    method = getattr(psutil.Process(), psutil_method)
    return lambda: float(method())


class FileDescriptors(Probe):
    """Open file descriptors (files, sockets, pipes)."""

    name = "fds"
    title = "File descriptors"
    unit = "fds"
    default_limit = 0.02
    is_handle = True

    def __init__(self) -> None:
        self.read = _entry_counter("/proc/self/fd", "num_fds")  # type: ignore[method-assign]


class PythonThreads(Probe):
    """Live Python threads (``threading.active_count()``)."""

    name = "threads"
    title = "Python threads"
    unit = "threads"
    default_limit = 0.02
    is_handle = True

    def read(self) -> float:
        return float(threading.active_count())


class OSThreads(Probe):
    """Threads of the process as the OS sees them, including ones C code started."""

    name = "os_threads"
    title = "OS threads"
    unit = "threads"
    default_limit = 0.02
    is_handle = True

    def __init__(self) -> None:
        self.read = _entry_counter("/proc/self/task", "num_threads")  # type: ignore[method-assign]


class AsyncioTasks(Probe):
    """Pending asyncio tasks on the running event loop (async steps only)."""

    name = "tasks"
    title = "asyncio tasks"
    unit = "tasks"
    default_limit = 0.02
    is_handle = True

    def unavailable(self) -> str | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return "no running event loop (a sync step)"
        return None

    def read(self) -> float:
        return float(len(asyncio.all_tasks()))


def _children_from_proc() -> float:
    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children", "rb") as fh:
                count += len(fh.read().split())
        except OSError:  # the thread ended between listdir and open
            pass
    return float(count)


class ChildProcesses(Probe):
    """Direct child processes, zombies (never waited for) included."""

    name = "children"
    title = "Child processes"
    unit = "processes"
    default_limit = 0.02
    is_handle = True

    def __init__(self) -> None:
        if os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children"):
            self.read = _children_from_proc  # type: ignore[method-assign]
        else:
            import psutil

            proc = psutil.Process()
            self.read = lambda: float(len(proc.children()))  # type: ignore[method-assign]


class CreatedFiles(Probe):
    """Files and directories created while recording and still on disk (via audit hooks)."""

    name = "files"
    title = "Files left on disk"
    unit = "files"
    default_limit = 0.02
    is_handle = True

    def read(self) -> float:
        from .handles import RECORDER

        return float(RECORDER.live_created_count())


PROBES: dict[str, type[Probe]] = {
    cls.name: cls
    for cls in (
        PythonBlocks,
        TracedBytes,
        NativeHeap,
        ResidentMemory,
        UniqueMemory,
        FileDescriptors,
        PythonThreads,
        OSThreads,
        AsyncioTasks,
        ChildProcesses,
        CreatedFiles,
    )
}

#: Every probe but USS, which costs a millisecond a reading.
DEFAULT_PROBES: tuple[str, ...] = tuple(name for name in PROBES if name != "uss")


def make_probes(names: Sequence[str], *, source: str = "") -> list[Probe]:
    """Instantiate probes by name; :class:`ConfigError` lists the known names for a bad one."""
    probes = []
    for name in names:
        cls = PROBES.get(name)
        if cls is None:
            raise ConfigError(
                "probes", name, f"unknown probe; known probes: {', '.join(PROBES)}", source
            )
        probes.append(cls())
    return probes
