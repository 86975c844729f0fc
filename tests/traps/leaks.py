"""Seeded leaks: each grows one measure per iteration and must be caught."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trap:
    """A step with optional setup/teardown, and what a check must say about it."""

    name: str
    step: Callable[..., Any]
    setup: Callable[..., Any] | None = None
    teardown: Callable[..., Any] | None = None
    measure: str = ""  #: the probe that must flag it (leaks), or "" (clean traps)
    handle_kind: str = ""  #: the kind of handle left after teardown, when it is one
    options: dict[str, Any] = field(default_factory=dict)  #: check() keywords


def bytes_100() -> Trap:
    keep: list[bytes] = []
    return Trap("bytes_100", lambda: keep.append(os.urandom(67)), measure="py_blocks")  # 100 B objects


def small_int() -> Trap:
    keep: list[int] = []
    counter = iter(range(10**9))
    return Trap("small_int", lambda: keep.append(next(counter) + 1000), measure="py_blocks")


def kib_10() -> Trap:
    keep: list[bytes] = []
    return Trap("kib_10", lambda: keep.append(bytes(10 * 1024)), measure="native_heap")


def dict_cache() -> Trap:
    cache: dict[str, str] = {}
    counter = iter(range(10**9))

    def step() -> None:
        n = next(counter)
        cache[f"key-{n}"] = f"value-{n}"

    return Trap("dict_cache", step, measure="py_blocks")


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_LIBC.malloc.restype = ctypes.c_void_p
_LIBC.malloc.argtypes = [ctypes.c_size_t]
_LIBC.free.argtypes = [ctypes.c_void_p]


def malloc_64() -> Trap:
    """64 B malloc'd per iteration and never freed: the smallest native leak promised."""
    # keep the pointers in a preallocated buffer so only the native heap grows
    buf = (ctypes.c_void_p * 100_000)()
    count = [0]

    def step() -> None:
        buf[count[0]] = _LIBC.malloc(64)
        count[0] += 1

    def free_all() -> None:
        for i in range(count[0]):
            _LIBC.free(buf[i])

    return Trap("malloc_64", step, teardown=free_all, measure="native_heap")


def open_file() -> Trap:
    keep: list[Any] = []
    CLOSE.append(keep)
    return Trap("open_file", lambda: keep.append(open(os.devnull, "rb")), measure="fds", handle_kind="fd")


def kept_socket() -> Trap:
    """A listening socket opened in the step and kept (its address names it)."""
    keep: list[socket.socket] = []
    CLOSE.append(keep)

    def step() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen()
        keep.append(s)

    return Trap("kept_socket", step, measure="fds", handle_kind="fd")


def blocked_thread() -> Trap:
    """A thread per iteration left waiting on an event nobody sets (released at exit)."""
    gate = threading.Event()
    RELEASE.append(gate)

    def step() -> None:
        threading.Thread(target=gate.wait, name="blocked-worker", daemon=True).start()

    return Trap("blocked_thread", step, measure="threads", handle_kind="thread")


async def _forever() -> None:
    await asyncio.Event().wait()


def pending_task() -> Trap:
    keep: list[asyncio.Task[None]] = []

    async def step() -> None:
        keep.append(asyncio.get_running_loop().create_task(_forever()))

    return Trap("pending_task", step, measure="tasks", handle_kind="task")


def zombie_child() -> Trap:
    """A child process started each iteration and never waited for."""
    keep: list[subprocess.Popen[bytes]] = []

    def step() -> None:
        keep.append(subprocess.Popen([sys.executable, "-c", "pass"]))

    def teardown() -> None:
        pass  # never wait: that is the leak

    REAP.append(keep)
    return Trap(
        "zombie_child",
        step,
        teardown=teardown,
        measure="children",
        handle_kind="child",
        options={"iterations": 30, "warmup": 3},
    )


#: Each temp-file trap's own folder: under pytest-xdist another worker's cleanup must not
#: delete this one's files while it is being checked (it would then see no files left).
TRAP_DIRS: list[str] = []


def temp_file() -> Trap:
    folder = tempfile.mkdtemp(prefix="leakcheck-trap-dir-")
    TRAP_DIRS.append(folder)

    def step() -> None:
        fd, _ = tempfile.mkstemp(prefix="leakcheck-trap-", dir=folder)
        os.close(fd)

    return Trap("temp_file", step, measure="files", handle_kind="file")


#: Events to set and children to reap once a test is done with a trap.
RELEASE: list[threading.Event] = []
REAP: list[list[subprocess.Popen[bytes]]] = []
CLOSE: list[list[Any]] = []


def release_all() -> None:
    """Unblock leaked threads, reap leaked children, delete leaked temp files."""
    for gate in RELEASE:
        gate.set()
    RELEASE.clear()
    for thread in threading.enumerate():
        if thread.name == "blocked-worker":
            thread.join()
    for kids in REAP:
        for p in kids:
            p.wait()
    REAP.clear()
    _reap_dropped_popens()
    for handles in CLOSE:
        for h in handles:
            h.close()
    CLOSE.clear()
    for folder in TRAP_DIRS:
        shutil.rmtree(folder, ignore_errors=True)
    TRAP_DIRS.clear()


def _reap_dropped_popens() -> None:
    """Wait for the children of ``Popen`` objects dropped while running, and close their pipes.

    ``Popen.__del__`` parks such an object in ``subprocess._active`` until a later ``Popen``
    reaps it; its pipe is then freed unclosed, and the ``ResourceWarning`` (an error under
    this suite's filters) lands as an unraisable exception on whichever test is running.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        parked = getattr(subprocess, "_active", None)
        for p in list(parked or ()):
            p.wait()
            for pipe in (p.stdin, p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
        if parked:
            parked.clear()


LEAKS: dict[str, Callable[[], Trap]] = {
    f.__name__: f
    for f in (
        bytes_100,
        small_int,
        kib_10,
        dict_cache,
        malloc_64,
        open_file,
        kept_socket,
        blocked_thread,
        pending_task,
        zombie_child,
        temp_file,
    )
}
