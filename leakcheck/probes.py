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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]


def _load_mallinfo2() -> tuple[object | None, str | None]:
    if not sys.platform.startswith("linux"):
        return None, f"mallinfo2() is glibc-only; this is {sys.platform}"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None, "this C library has no mallinfo2() (glibc >= 2.33 needed; musl has none)"
    fn.restype = _MallInfo2
    fn.argtypes = []
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    global _MALLOC, _FREE
    _MALLOC, _FREE = libc.malloc, libc.free
    return fn, None


_MALLOC: object = None
_FREE: object = None
_MALLINFO2, _MALLINFO2_MISSING = _load_mallinfo2()


def _tcache_count() -> int:
    """Freed chunks glibc keeps per size class per thread (7 unless a tunable says otherwise)."""
    for item in os.environ.get("GLIBC_TUNABLES", "").replace(",", ":").split(":"):
        key, _, value = item.partition("=")
        if key.strip() == "glibc.malloc.tcache_count" and value.strip().isdigit():
            return min(int(value), 127)
    return 7


#: Requests landing in each of glibc's 64 tcache size classes (chunks of 32..1040 B on
#: 64-bit): 24, 40, ..., 1032 bytes.
_TCACHE_REQUESTS = tuple(24 + 16 * b for b in range(64))


class NativeHeap(Probe):
    """Bytes in use on the C heap (glibc ``mallinfo2``: ``uordblks + hblkhd``).

    Sees what tracemalloc cannot: sqlite's page cache, C extensions, ctypes
    mallocs, and Python objects over 512 bytes (which pymalloc hands to malloc).

    glibc parks up to 7 freed chunks per size class in a per-thread cache
    (tcache) that ``mallinfo2`` counts as in use: up to ~235 KiB that fills
    slowly when freed sizes vary (a ring of random-size buffers reads as
    +130 B/iteration for thousands of iterations). So each reading first takes
    every chunk the cache can hold (7 per class), reads, and frees them: the
    reading is then "in use + a constant" whatever the cache held.
    """

    name = "native_heap"
    title = "Native heap (malloc in use)"
    unit = "B"
    default_limit = 32.0  # a 64-byte malloc per iteration is a leak

    def __init__(self) -> None:
        self._sizes = tuple(size for size in _TCACHE_REQUESTS for _ in range(_tcache_count()))
        self._held = (ctypes.c_void_p * len(self._sizes))()
        # Reading the main thread's tcache counts costs microseconds; draining
        # it costs ~0.5 ms. Use the counts where their layout checks out.
        self._counts = _main_tcache_counts()
        self._main = threading.main_thread()

    def unavailable(self) -> str | None:
        return _MALLINFO2_MISSING

    def read(self) -> float:
        counts = self._counts
        if counts is not None and threading.current_thread() is self._main:
            info = _MALLINFO2()  # type: ignore[misc,operator]
            cached = 0
            for i in range(64):
                cached += counts[i] * (32 + 16 * i)
            return float(info.uordblks + info.hblkhd - cached)
        return self._read_draining()

    def _read_draining(self) -> float:
        malloc, free, held = _MALLOC, _FREE, self._held
        n = 0
        for size in self._sizes:
            held[n] = malloc(size)  # type: ignore[operator]
            n += 1
        info = _MALLINFO2()  # type: ignore[misc,operator]
        for i in range(n):
            free(held[i])  # type: ignore[operator]
        return float(info.uordblks + info.hblkhd)


def _main_tcache_counts() -> ctypes.Array[ctypes.c_uint16] | None:
    """The per-size-class counts of the main thread's glibc tcache, or None when unsure.

    glibc (2.30+, 64-bit) allocates the main thread's ``tcache_perthread_struct``
    (``uint16_t counts[64]`` then ``entries[64]``) as the first chunk of the main
    heap: size field 0x291 at heap start + 8. Trust it only if that holds and
    freeing three 100-byte mallocs moves the matching count as predicted.
    """
    if _MALLINFO2 is None or ctypes.sizeof(ctypes.c_void_p) != 8 or threading.current_thread() is not threading.main_thread():
        return None
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            start = next(int(line.split("-", 1)[0], 16) for line in fh if line.rstrip().endswith("[heap]"))
    except (OSError, StopIteration, ValueError):
        return None
    if ctypes.c_size_t.from_address(start + 8).value != 0x291:
        return None
    counts = (ctypes.c_uint16 * 64).from_address(start + 16)
    limit = _tcache_count()
    if any(c > limit for c in counts):
        return None
    cls = (112 - 32) // 16  # malloc(100) lands in the 112-byte chunk class
    held = [_MALLOC(100) for _ in range(3)]  # type: ignore[operator]
    before = counts[cls]
    for ptr in held:
        _FREE(ptr)  # type: ignore[operator]
    if counts[cls] != min(limit, before + 3):
        return None
    return counts


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
