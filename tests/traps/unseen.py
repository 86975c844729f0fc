"""Leaks no heap measure sees, and their clean twins (issue 12).

Mapped memory (an ``mmap`` kept per call, one page touched: 4 KiB of RSS,
64 KiB of virtual size) and resources the garbage collector closes (a file,
socket, aiosqlite connection or ``Popen`` dropped without closing). Each
seeded trap names the probe that must flag it; each clean twin must pass.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable

from traps.leaks import TRAP_DIRS, Trap

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_PROT = mmap.PROT_READ | mmap.PROT_WRITE
_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


def _map(size: int) -> int:
    addr = _LIBC.mmap(None, size, _PROT, _FLAGS, -1, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    ctypes.memset(addr, 1, 1)  # one page touched: RSS grows 4 KiB, the mapping 64 KiB
    return int(addr)


def _mapping_trap(name: str, size: int, keep: bool) -> Trap:
    # Addresses go in a preallocated array: only the mapping may grow.
    kept = array.array("Q", bytes(8 * 50_000))
    count = [0]

    def step() -> None:
        addr = _map(size)
        if keep:
            kept[count[0]] = addr
            count[0] += 1
        else:
            _LIBC.munmap(addr, size)

    def unmap_all() -> None:
        for i in range(count[0]):
            _LIBC.munmap(kept[i], size)
        count[0] = 0

    return Trap(name, step, teardown=unmap_all, measure="mapped" if keep else "")


def mmap_kept() -> Trap:
    """64 KiB mapped per call, one page touched, never unmapped."""
    return _mapping_trap("mmap_kept", 64 * 1024, True)


def mmap_kept_16k() -> Trap:
    """The smallest mapping per call promised: 16 KiB."""
    return _mapping_trap("mmap_kept_16k", 16 * 1024, True)


def mmap_unmapped() -> Trap:
    """The clean twin: 64 KiB mapped, touched and unmapped each call."""
    return _mapping_trap("mmap_unmapped", 64 * 1024, False)


def mmap_20mb() -> Trap:
    """20 MB mapped (Python's mmap module), touched and closed each call."""

    def step() -> None:
        with mmap.mmap(-1, 20 * 1000 * 1000) as m:
            m[::4096] = b"x" * len(range(0, len(m), 4096))

    return Trap("mmap_20mb", step)


def thread_per_100() -> Trap:
    """A new thread every 100th call, joined: one-off arena and stack mappings."""
    count = [0]

    def work() -> None:
        bytes(100_000)  # malloc in the thread: it gets an arena of its own

    def step() -> None:
        count[0] += 1
        if count[0] % 100 == 0:
            t = threading.Thread(target=work)
            t.start()
            t.join()

    return Trap("thread_per_100", step)


def _path() -> str:
    folder = tempfile.mkdtemp(prefix="leakcheck-trap-dir-")  # its own folder: nothing else cleans it
    TRAP_DIRS.append(folder)
    fd, path = tempfile.mkstemp(prefix="leakcheck-trap-", dir=folder)
    os.write(fd, b"content\n")
    os.close(fd)
    return path


def unclosed_file() -> Trap:
    """``open(path).read()`` per call: CPython closes the file, with a ResourceWarning."""
    path = _path()
    return Trap(
        "unclosed_file",
        lambda: open(path).read(),  # the leak under test: never closed
        teardown=lambda: os.unlink(path),
        measure="unclosed",
    )


def closed_file() -> Trap:
    """The clean twin: the file read in a ``with`` block."""
    path = _path()

    def step() -> None:
        with open(path) as fh:
            fh.read()

    return Trap("closed_file", step, teardown=lambda: os.unlink(path))


def warmup_unclosed_once() -> Trap:
    """One file left unclosed during the warm-up only; every later call closes its file."""
    path = _path()
    count = [0]

    def step() -> None:
        count[0] += 1
        fh = open(path)  # noqa: SIM115 - closed below, except once in the warm-up
        fh.read()
        if count[0] != 5:
            fh.close()

    return Trap("warmup_unclosed_once", step, teardown=lambda: os.unlink(path))


def dropped_socket() -> Trap:
    """A socket created and dropped unclosed per call."""
    return Trap("dropped_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), measure="unclosed")


def closed_socket() -> Trap:
    """The clean twin: the socket closed."""
    return Trap("closed_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())


def dropped_popen() -> Trap:
    """A ``subprocess.Popen`` never waited for and dropped (its pipe too)."""

    def step() -> None:
        subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE)

    return Trap("dropped_popen", step, measure="unclosed", options={"iterations": 50, "warmup": 5})


def waited_popen() -> Trap:
    """The clean twin: the child waited for and its pipe read to the end."""

    def step() -> None:
        with subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE) as p:
            p.communicate()

    return Trap("waited_popen", step, options={"iterations": 50, "warmup": 5})


def dropped_aiosqlite() -> Trap:
    """An aiosqlite connection used and left to ``__del__``."""
    import aiosqlite

    async def step() -> None:
        db = await aiosqlite.connect(":memory:")
        await db.execute("select 1")

    return Trap("dropped_aiosqlite", step, measure="unclosed")


def closed_aiosqlite() -> Trap:
    """The clean twin: the connection closed."""
    import aiosqlite

    async def step() -> None:
        async with aiosqlite.connect(":memory:") as db:
            await db.execute("select 1")

    return Trap("closed_aiosqlite", step)


LEAKS: dict[str, Callable[[], Trap]] = {
    f.__name__: f for f in (mmap_kept, mmap_kept_16k, unclosed_file, dropped_socket, dropped_popen, dropped_aiosqlite)
}
CLEAN: dict[str, Callable[[], Trap]] = {
    f.__name__: f
    for f in (
        mmap_unmapped,
        mmap_20mb,
        thread_per_100,
        closed_file,
        warmup_unclosed_once,
        closed_socket,
        waited_popen,
        closed_aiosqlite,
    )
}
