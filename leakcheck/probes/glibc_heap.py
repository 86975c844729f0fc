"""glibc's heap from the inside: ``mallinfo2`` and the per-thread caches it counts as in use.

glibc parks up to 7 freed chunks per size class (64 classes, 32..1040 B)
in a cache per thread, the tcache, and ``mallinfo2`` counts them as in use:
up to ~235 KiB a thread, filling slowly when freed sizes vary. A native-heap
reading must take them out. This module finds them:

- the main thread's ``tcache_perthread_struct`` is the first chunk of the
  main heap (:func:`main_tcache_counts`);
- every other thread's is reached through libc's thread-local ``tcache``
  pointer, which sits at one offset from each thread's ``pthread_t`` (its
  thread control block, which CPython reports as the thread's ``ident``);
  :class:`ThreadCaches` finds that offset once and reads the other threads'
  counts through ``/proc/self/mem``, which fails cleanly where a plain read
  of a thread that just exited would fault.

Everything is checked before it is trusted (layout, then counts moving as
predicted when a thread frees memory); when a check fails the caller falls
back to draining the calling thread's cache and says nothing false.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from operator import mul

__all__ = [
    "BLOCKED_THREADS",
    "MALLINFO2_MISSING",
    "TCACHE_REQUESTS",
    "ThreadCaches",
    "cached_bytes",
    "free",
    "in_use",
    "main_tcache_counts",
    "malloc",
    "tcache_count",
]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _load_libc() -> tuple[ctypes.CDLL | None, str | None]:
    if not sys.platform.startswith("linux"):
        return None, f"mallinfo2() is glibc-only; this is {sys.platform}"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None, "this C library has no mallinfo2() (glibc >= 2.33 needed; musl has none)"
    libc.mallinfo2.argtypes = []
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    return libc, None


_LIBC, MALLINFO2_MISSING = _load_libc()


def in_use() -> int:
    """Bytes ``mallinfo2`` reports in use: chunks handed out (tcaches included) plus mmapped ones."""
    info = _LIBC.mallinfo2()  # type: ignore[union-attr]
    return int(info.uordblks + info.hblkhd)


def malloc(size: int) -> int:
    """libc ``malloc`` (for draining a cache and for checks)."""
    return int(_LIBC.malloc(size) or 0)  # type: ignore[union-attr]


def free(ptr: int) -> None:
    """libc ``free``."""
    _LIBC.free(ptr)  # type: ignore[union-attr]


def tcache_count() -> int:
    """Freed chunks glibc keeps per size class per thread (7 unless a tunable says otherwise)."""
    for item in os.environ.get("GLIBC_TUNABLES", "").replace(",", ":").split(":"):
        key, _, value = item.partition("=")
        if key.strip() == "glibc.malloc.tcache_count" and value.strip().isdigit():
            return min(int(value), 127)
    return 7


#: Requests landing in each of glibc's 64 tcache size classes (chunks of 32..1040 B on
#: 64-bit): 24, 40, ..., 1032 bytes.
TCACHE_REQUESTS = tuple(24 + 16 * b for b in range(64))
#: malloc(100) lands in the 112-byte chunk class, the one every check frees into.
_CHECK_CLASS = (112 - 32) // 16


_CHUNK_SIZES = tuple(32 + 16 * i for i in range(64))

#: Idents of leakcheck's own threads that sit blocked, allocating nothing, while a check runs
#: (the watchdog): their caches cannot move, so the samples leave them unread (an open of
#: /proc/self/mem and two reads each, the larger part of a native-heap reading).
BLOCKED_THREADS: set[int] = set()


def cached_bytes(counts: tuple[int, ...] | ctypes.Array[ctypes.c_uint16]) -> int:
    """Bytes of the chunks a tcache holds, given its 64 per-class counts."""
    return sum(map(mul, counts, _CHUNK_SIZES))


def _main_heap_start() -> int | None:
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            return next(int(line.split("-", 1)[0], 16) for line in fh if line.rstrip().endswith("[heap]"))
    except (OSError, StopIteration, ValueError):
        return None


def _frees_move(read_count: Callable[[], int | None]) -> bool:
    """Whether freeing three 100-byte mallocs in this thread moves its count as predicted.

    Tried up to eight times: early in a process, the interpreter's and
    ctypes's own first allocations take chunks of that size from the cache
    while we count. A wrong address never moves by exactly three on cue.
    """
    for _ in range(8):
        free(malloc(100))
        read_count()
        held = [malloc(100) for _ in range(3)]
        before = read_count()
        for ptr in held:
            free(ptr)
        after = read_count()
        if before is not None and after == min(tcache_count(), before + 3):
            return True
    return False


def main_tcache_counts() -> ctypes.Array[ctypes.c_uint16] | None:
    """The per-size-class counts of the main thread's glibc tcache, or None when unsure.

    glibc (2.30+, 64-bit) allocates the main thread's ``tcache_perthread_struct``
    (``uint16_t counts[64]`` then ``entries[64]``) as the first chunk of the main
    heap: size field 0x291 at heap start + 8. Trust it only if that holds and
    freeing three 100-byte mallocs moves the matching count as predicted.
    """
    if (
        _LIBC is None
        or ctypes.sizeof(ctypes.c_void_p) != 8
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    start = _main_heap_start()
    if start is None or ctypes.c_size_t.from_address(start + 8).value != 0x291:
        return None
    counts = (ctypes.c_uint16 * 64).from_address(start + 16)
    if any(c > tcache_count() for c in counts):
        return None
    if not _frees_move(lambda: int(counts[_CHECK_CLASS])):
        return None
    return counts


#: (pid, main cache address) → the offset found for it, or None when the search failed.
_FOUND: dict[tuple[int, int], int | None] = {}


class ThreadCaches:
    """Bytes parked in other Python threads' tcaches, read through their thread-local pointers.

    Build with :meth:`find`; ``None`` when this libc, kernel or sandbox does
    not let us (``/proc/self/mem`` unreadable, an unexpected layout, a check
    that did not move as predicted). Memory is read through
    ``/proc/self/mem``, where an address that is no longer mapped (a thread
    that has just exited) is an error, not a fault; the file is opened for
    each reading and closed again, so no descriptor outlives it.
    """

    #: How far on each side of the main thread's control block to look for libc's ``tcache``.
    SPAN = 1 << 16

    def __init__(self, offset: int, limit: int) -> None:
        self.offset = offset  #: libc's ``tcache`` pointer is at ``ident + offset`` in every thread
        self._limit = limit

    @classmethod
    def find(cls, main_counts_address: int) -> ThreadCaches | None:
        """Locate libc's ``tcache`` pointer from the main thread's cache address, and check it on a new thread."""
        main = threading.main_thread().ident
        if _LIBC is None or main is None or sys.byteorder != "little":
            return None
        key = (os.getpid(), main_counts_address)
        if key not in _FOUND:  # one search and check per process
            _FOUND[key] = cls._search(main, main_counts_address)
        offset = _FOUND[key]
        return None if offset is None else cls(offset, tcache_count())

    @classmethod
    def _search(cls, main: int, main_counts_address: int) -> int | None:
        hits = []
        page = 4096
        try:
            with _memory() as read:
                for base in range(main - cls.SPAN, main + cls.SPAN, page):
                    block = read(base, page)
                    if block is None:
                        continue
                    hits += [
                        base + i - main
                        for i in range(0, page, 8)
                        if struct.unpack_from("<Q", block, i)[0] == main_counts_address
                    ]
        except OSError:
            return None
        if len(hits) != 1:
            return None
        return hits[0] if cls(hits[0], tcache_count())._checks_out_on_a_new_thread() else None

    def other_threads(self) -> int:
        """Bytes held in the tcaches of every live Python thread but the calling one."""
        me = threading.get_ident()
        others = [
            t.ident
            for t in threading.enumerate()
            if t.ident is not None and t.ident != me and t.ident not in BLOCKED_THREADS
        ]
        if not others:
            return 0  # the usual single-threaded step: no file to open on every sample
        total = 0
        try:
            with _memory() as read:
                for ident in others:
                    counts = self._counts_in(read, ident)
                    if counts is not None:
                        total += cached_bytes(counts)
        except OSError:
            return 0
        return total

    def counts_of(self, ident: int) -> tuple[int, ...] | None:
        """The 64 tcache counts of the thread whose ``pthread_t`` is ``ident`` (None if unreadable)."""
        try:
            with _memory() as read:
                return self._counts_in(read, ident)
        except OSError:
            return None

    def _counts_in(self, read: Callable[[int, int], bytes | None], ident: int) -> tuple[int, ...] | None:
        word = read(ident + self.offset, 8)
        if word is None:
            return None
        address = struct.unpack("<Q", word)[0]
        if not address:
            return None  # the thread has not called malloc yet, or is shutting down
        raw = read(address, 128)
        if raw is None:
            return None
        counts = struct.unpack("<64H", raw)
        # A thread that exits between enumerate() and here frees its cache;
        # what we then read is not a cache, and rarely passes this.
        return counts if max(counts) <= self._limit else None

    def _checks_out_on_a_new_thread(self) -> bool:
        verdict: list[bool] = []

        def check() -> None:
            free(malloc(100))  # the thread's cache exists after its first malloc
            ident = threading.get_ident()

            def count() -> int | None:
                counts = self.counts_of(ident)
                return None if counts is None else counts[_CHECK_CLASS]

            verdict.append(_frees_move(count))

        thread = threading.Thread(target=check, name="leakcheck-tcache-check", daemon=True)
        thread.start()
        thread.join(5)
        _wait_gone(thread.native_id)
        return verdict == [True]


def _wait_gone(tid: int | None, wait: float = 1.0) -> None:
    """Wait for a joined thread's OS thread to exit, so no handle check counts it."""
    deadline = time.monotonic() + wait
    while tid is not None and os.path.exists(f"/proc/self/task/{tid}") and time.monotonic() < deadline:
        time.sleep(0.001)


@contextlib.contextmanager
def _memory() -> Iterator[Callable[[int, int], bytes | None]]:
    """A reader of this process's memory through ``/proc/self/mem``, for one reading."""
    fd = os.open("/proc/self/mem", os.O_RDONLY | os.O_CLOEXEC)

    def read(address: int, size: int) -> bytes | None:
        try:
            data = os.pread(fd, size, address)
        except OSError:
            return None  # not mapped (any more)
        return data if len(data) == size else None

    try:
        yield read
    finally:
        os.close(fd)
