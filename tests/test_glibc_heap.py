"""The native-heap measure takes other threads' glibc caches out, and still sees their leaks."""

from __future__ import annotations

import os
import platform
import random
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import leakcheck
from leakcheck import Verdict
from leakcheck.probes import NativeHeap, glibc_heap

ON_GLIBC_X86_64 = sys.platform == "linux" and platform.machine() == "x86_64" and glibc_heap.MALLINFO2_MISSING is None
pytestmark = pytest.mark.skipif(not ON_GLIBC_X86_64, reason="reads glibc's heap on x86-64 Linux")


def in_a_thread(work: Callable[[], object]) -> Iterator[None]:
    """Run ``work`` in a new thread that stays alive (its cache with it) until the caller resumes."""
    done, release = threading.Event(), threading.Event()

    def run() -> None:
        work()
        done.set()
        release.wait()

    thread = threading.Thread(target=run, name="glibc-heap-test")
    thread.start()
    done.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def free_many_sizes() -> None:
    rng = random.Random(7)
    held = [glibc_heap.malloc(rng.choice(glibc_heap.TCACHE_REQUESTS)) for _ in range(2000)]
    for ptr in held:
        glibc_heap.free(ptr)
    del held


def _proc_self_mem_error() -> str:
    try:
        os.close(os.open("/proc/self/mem", os.O_RDONLY))
    except OSError as exc:
        return f"this sandbox does not let a process read /proc/self/mem: {exc}"
    return ""


needs_proc_self_mem = pytest.mark.skipif(bool(_proc_self_mem_error()), reason=_proc_self_mem_error())


@needs_proc_self_mem
def test_the_other_threads_caches_are_found_here() -> None:
    probe = NativeHeap()
    assert probe._counts is not None, "the main thread's tcache layout did not check out"
    assert probe._others is not None, "libc's thread-local tcache pointer was not found"


@needs_proc_self_mem
def test_a_worker_threads_full_cache_is_not_growth() -> None:
    probe = NativeHeap()
    tries = []
    # Other threads of this process (pytest-xdist's execnet I/O thread) malloc and free
    # while we measure; their traffic is noise here, so one of three tries must be clean.
    for _attempt in range(3):
        raw, reading = glibc_heap.in_use(), probe.read()
        for _ in in_a_thread(free_many_sizes):
            raw_grew, grew = glibc_heap.in_use() - raw, probe.read() - reading
        assert raw_grew > 100_000, "the worker's cache did not fill: nothing was tested"
        tries.append((raw_grew, grew))
        # What remains is the new thread itself: its cache struct (656 B), its thread state.
        if grew < 8192:
            break
    else:
        pytest.fail(f"(mallinfo2 growth, measured growth) in each try: {tries}")


def test_a_worker_threads_leak_is_still_seen() -> None:
    probe = NativeHeap()
    tries = []
    for _attempt in range(3):  # one of three tries clear of other threads' traffic (see above)
        kept: list[int] = []
        reading = probe.read()
        for _ in in_a_thread(lambda: kept.extend(glibc_heap.malloc(1000) for _ in range(100))):  # noqa: B023 - called in this iteration
            grew = probe.read() - reading
        for ptr in kept:
            glibc_heap.free(ptr)
        tries.append(grew)
        if 100 * 1000 <= grew <= 100 * 1100:
            break
    else:
        pytest.fail(f"measured growth in each try, expected 100000..110000: {tries}")


@pytest.fixture
def worker() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="native-worker") as pool:
        pool.submit(int).result()  # the thread starts before the check, not in it
        yield pool


def test_random_frees_in_a_long_lived_worker_pass(worker: ThreadPoolExecutor) -> None:
    # aiosqlite's shape: every query's buffers are malloc'd and freed on the
    # connection's own thread, whose cache fills over hundreds of iterations.
    rng = random.Random(3)

    def job() -> None:
        held = [glibc_heap.malloc(rng.choice(glibc_heap.TCACHE_REQUESTS)) for _ in range(20)]
        for ptr in held:
            glibc_heap.free(ptr)

    result = leakcheck.check(lambda: worker.submit(job).result(), probes=["native_heap"], attribution="off")
    assert not result.leaking, str(result)


def test_a_leak_in_a_long_lived_worker_fails(worker: ThreadPoolExecutor) -> None:
    kept: list[int] = []
    result = leakcheck.check(
        lambda: worker.submit(lambda: kept.append(glibc_heap.malloc(200))).result(),
        probes=["native_heap"],
        attribution="off",
    )
    for ptr in kept:
        glibc_heap.free(ptr)
    assert result.finding("native_heap").verdict is Verdict.UNBOUNDED, str(result)


@needs_proc_self_mem
def test_the_watchdogs_idle_thread_is_not_read_but_another_thread_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # The watchdog sits in one wait for the whole check, so its cache cannot move: reading it on
    # every sample only cost an open of /proc/self/mem. Any other thread's cache is still read.
    from leakcheck.watchdog import Watchdog

    probe = NativeHeap()
    assert probe._others is not None
    opened: list[int] = []
    real = glibc_heap._memory

    def counting() -> object:
        opened.append(1)
        return real()

    monkeypatch.setattr(glibc_heap, "_memory", counting)
    dog = Watchdog(60)
    dog.start()
    try:
        assert dog._thread is not None and dog._thread.ident in glibc_heap.BLOCKED_THREADS
        probe.read()
        assert opened == []
        for _ in in_a_thread(free_many_sizes):
            probe.read()
        assert opened == [1]
    finally:
        dog.stop()
    assert not glibc_heap.BLOCKED_THREADS
