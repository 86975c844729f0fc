"""Clean look-alikes: each allocates, caches or grows for a while, and must pass."""

from __future__ import annotations

import collections
import functools
import os
import random
import re
import sqlite3
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .leaks import Trap


def lazy_init() -> Trap:
    """A module-level thing built on the first iteration only."""
    state: dict[str, Any] = {}

    def step() -> None:
        if "table" not in state:
            state["table"] = [str(i) * 3 for i in range(5000)]
        sum(len(s) for s in state["table"][:10])

    return Trap("lazy_init", step)


def lru_plateau() -> Trap:
    """An lru_cache(maxsize=256) fed unique keys: it fills, then evicts."""
    counter = iter(range(10**9))

    @functools.lru_cache(maxsize=256)
    def square(n: int) -> str:
        return f"{n * n}-result"

    return Trap("lru_plateau", lambda: square(next(counter) + 10**6))


def re_cache() -> Trap:
    """re.compile of a new pattern each iteration: re's cache is bounded (and purged)."""
    counter = iter(range(10**9))

    def step() -> None:
        n = next(counter)
        re.compile(f"item-{n}-(\\d+)").match(f"item-{n}-42")

    return Trap("re_cache", step)


def gc_cycles() -> Trap:
    """Reference cycles made and dropped each iteration: only gc frees them."""

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None
            self.payload = bytearray(200)

    def step() -> None:
        a, b = Node(), Node()
        a.other, b.other = b, a

    return Trap("gc_cycles", step)


def sawtooth() -> Trap:
    """Append 1 KiB per iteration, clear every 50."""
    buf: list[bytes] = []
    counter = iter(range(10**9))

    def step() -> None:
        buf.append(bytes(1024))
        if next(counter) % 50 == 49:
            buf.clear()

    return Trap("sawtooth", step)


def bounded_ring(seed: int = 1234) -> Trap:
    """A deque(maxlen=32) of buffers of random size (seeded)."""
    ring: collections.deque[bytes] = collections.deque(maxlen=32)
    rng = random.Random(seed)
    return Trap("bounded_ring", lambda: ring.append(bytes(rng.randrange(16, 8192))))


def long_fill() -> Trap:
    """A deque(maxlen=1500) of small records: it fills for 1,500 iterations, far past 2 × 200."""
    ring: collections.deque[tuple[int, str]] = collections.deque(maxlen=1500)
    counter = iter(range(10**9))
    return Trap("long_fill", lambda: ring.append((next(counter) + 10**6, "event")))


def thread_pool() -> Trap:
    """ThreadPoolExecutor(4) with a job per iteration: threads start lazily, up to 4."""

    def setup() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=4, thread_name_prefix="trap-pool")

    def step(pool: ThreadPoolExecutor) -> None:
        pool.submit(sum, range(100)).result()

    def teardown(pool: ThreadPoolExecutor) -> None:
        pool.shutdown(wait=True)

    return Trap("thread_pool", step, setup=setup, teardown=teardown)


def sqlite_disk() -> Trap:
    """connect/query/close on a database file."""

    def setup() -> str:
        fd, path = tempfile.mkstemp(suffix=".sqlite", prefix="leakcheck-clean-")
        os.close(fd)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            db.executemany("INSERT INTO t (name) VALUES (?)", [(f"n{i}",) for i in range(500)])
        db.close()
        return path

    def step(path: str) -> None:
        db = sqlite3.connect(path)
        try:
            db.execute("SELECT count(*), max(name) FROM t WHERE id > ?", (10,)).fetchall()
        finally:
            db.close()

    def teardown(path: str) -> None:
        os.unlink(path)

    return Trap("sqlite_disk", step, setup=setup, teardown=teardown)


def big_buffer() -> Trap:
    """20 MB allocated, touched and freed each iteration."""

    def step() -> None:
        buf = bytearray(20 * 1000 * 1000)
        buf[::4096] = b"x" * len(buf[::4096])
        del buf

    return Trap("big_buffer", step)


CLEAN: dict[str, Callable[[], Trap]] = {
    f.__name__: f
    for f in (
        lazy_init,
        lru_plateau,
        re_cache,
        gc_cycles,
        sawtooth,
        bounded_ring,
        long_fill,
        thread_pool,
        sqlite_disk,
        big_buffer,
    )
}
