"""Attribution windows: seeded leaks are named by their line, clean look-alikes are not."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import os
import sqlite3
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest

from leakcheck.attribution import (
    CAPTURE_NAME,
    FLAMEGRAPH_NAME,
    Window,
    memray_window,
    open_window,
)
from leakcheck.attribution.fit import count_regularity, tracking
from leakcheck.attribution.frames import clean_stack
from leakcheck.errors import ConfigError
from leakcheck.results import Attribution

HERE = os.path.abspath(__file__)


def line_of(marker: str) -> int:
    """The line number in this file of the line ending with ``# <marker>``."""
    with open(HERE, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return number
    raise AssertionError(marker)


def drive(window: Window, step: Callable[[int], Any], iterations: int, warmup: int = 5) -> Attribution:
    """What the runner does: warm up, then start / step + gc + checkpoint / finish."""
    for i in range(warmup):
        step(-1 - i)
    gc.collect()
    window.start()
    for i in range(1, iterations + 1):
        step(i)
        gc.collect()
        window.checkpoint(i)
    return window.finish(iterations)


@pytest.fixture
def no_temp_leftovers(tmp_path_factory, monkeypatch):
    """Captures go to a private temp dir that must be empty afterwards; the cwd gets none of them."""
    private = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(private))

    # Only what a window could write is compared: other xdist workers write to the shared cwd meanwhile.
    def ours() -> set[str]:
        return {n for n in os.listdir(os.getcwd()) if "memray" in n or "flamegraph" in n or n.startswith("leakcheck")}

    cwd_before = ours()
    yield
    assert list(private.iterdir()) == []
    assert ours() == cwd_before


# --- seeded leaks and look-alikes --------------------------------------------------------


def make_python_leak() -> Callable[[int], None]:
    kept: list[bytes] = []

    def step(i: int) -> None:
        kept.append(b"x" * 100 + str(i).encode())  # PYLEAK

    return step


def make_cache_step(keys: Callable[[int], int]) -> Callable[[int], None]:
    @functools.lru_cache(maxsize=64)
    def cached(key: int) -> list[int]:
        return [key] * 20

    def step(i: int) -> None:
        cached(keys(i))

    return step


def make_sqlite_leak() -> tuple[Callable[[int], None], list[sqlite3.Connection]]:
    conns: list[sqlite3.Connection] = []

    def step(i: int) -> None:
        conns.append(sqlite3.connect(":memory:"))  # SQLITELEAK

    return step, conns


def test_python_heap_leak_top_site_is_the_leaking_line():
    att = drive(open_window("tracemalloc", iterations=60), make_python_leak(), 60)
    assert att.sites, att
    top = att.sites[0]
    assert top.source == "tracemalloc"
    assert top.location == f"{os.path.relpath(HERE)}:{line_of('PYLEAK')}"
    assert 100 <= top.bytes_per_iteration <= 200
    assert top.blocks_per_iteration == pytest.approx(1.0, abs=0.2)
    assert top.correlation > 0.9
    assert "kept.append" in top.traceback[-1]
    # Harness frames are gone: nothing from leakcheck, pytest or pluggy in the traceback.
    assert not any(("_pytest" in t or "pluggy" in t or "leakcheck/" in t) for t in top.traceback)


@pytest.mark.parametrize(
    "keys",
    [pytest.param(lambda i: i, id="churning"), pytest.param(lambda i: i % 64, id="filling")],
)
@pytest.mark.parametrize("mode", ["tracemalloc", "memray"])
def test_bounded_cache_yields_no_leaking_site(mode, keys, no_temp_leftovers):
    att = drive(open_window(mode, iterations=150), make_cache_step(keys), 150, warmup=2)
    assert att.sites == (), [s.describe() for s in att.sites]


def test_one_off_allocation_is_not_a_leak():
    store: list[bytes] = []

    def step(i: int) -> None:
        if i == 20:
            store.append(bytes(100_000))

    att = drive(open_window("tracemalloc", iterations=40), step, 40)
    assert att.sites == ()


def test_memray_names_the_python_line_of_a_native_leak(no_temp_leftovers):
    step, conns = make_sqlite_leak()
    try:
        att = drive(open_window("memray", iterations=30), step, 30)
    finally:
        for c in conns:
            c.close()
    assert att.sites, att.notes
    top = att.sites[0]
    assert top.source == "memray"
    assert top.location.startswith(f"{os.path.relpath(HERE)}:{line_of('SQLITELEAK')}")
    assert any("sqlite3.connect" in t for t in top.traceback)
    assert top.bytes_per_iteration > 1000
    assert top.correlation > 0.8
    assert att.flamegraph is None  # none asked for


def test_both_mode_two_windows_and_a_flamegraph(tmp_path, no_temp_leftovers):
    step, conns = make_sqlite_leak()
    try:
        att = drive(
            open_window("both", iterations=24, capture_dir=tmp_path / "t", flamegraph=True),
            step,
            24,
        )
    finally:
        for c in conns:
            c.close()
    assert {s.source for s in att.sites} == {"tracemalloc", "memray"}
    assert att.window_iterations == 24
    assert att.flamegraph == str(tmp_path / "t" / FLAMEGRAPH_NAME)
    text = Path(att.flamegraph).read_text(encoding="utf-8")
    assert "<html" in text.lower()
    assert not (tmp_path / "t" / CAPTURE_NAME).exists()  # not kept unless asked
    assert [p.name for p in (tmp_path / "t").iterdir()] == [FLAMEGRAPH_NAME]


def test_keep_capture_leaves_it_in_capture_dir(tmp_path, no_temp_leftovers):
    step, conns = make_sqlite_leak()
    try:
        drive(open_window("memray", iterations=9, capture_dir=tmp_path, keep_capture=True), step, 9)
    finally:
        for c in conns:
            c.close()
    assert (tmp_path / CAPTURE_NAME).is_file()


def test_ctypes_malloc_leak_points_at_valgrind_not_a_flamegraph(tmp_path, no_temp_leftovers):
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks: list[int] = []

    def step(i: int) -> None:
        for _ in range(10):
            blocks.append(libc.malloc(1024))

    try:
        att = drive(
            open_window(
                "auto",
                iterations=30,
                capture_dir=tmp_path,
                flamegraph=True,
                native_suspected=True,
                valgrind_command="leakcheck valgrind tests/test_x.py::test_y 5",
            ),
            step,
            30,
        )
    finally:
        for b in blocks:
            libc.free(b)
    assert att.flamegraph is None
    assert not (tmp_path / FLAMEGRAPH_NAME).exists()
    text = " ".join(att.notes)
    assert "ctypes" in text and "run it under valgrind to find it: leakcheck valgrind tests/test_x.py::test_y 5" in text
    assert "scripts/" not in text
    assert all(s.bytes_per_iteration < 1024 for s in att.sites)  # nothing claims the 10 KiB


def test_memray_missing_falls_back_to_tracemalloc(monkeypatch):
    monkeypatch.setattr(memray_window, "memray_unavailable_reason", lambda: "memray is not here")
    att = drive(open_window("memray", iterations=40), make_python_leak(), 40)
    assert att.sites and att.sites[0].source == "tracemalloc"
    assert any("memray is not here" in n and "tracemalloc" in n for n in att.notes)


def test_memray_missing_auto_mode_uses_tracemalloc(monkeypatch):
    from leakcheck import attribution

    monkeypatch.setattr(attribution, "memray_unavailable_reason", lambda: "memray is not here")
    window = open_window("auto", iterations=10, native_suspected=True)
    assert type(getattr(window, "inner", window)).__name__ == "TracemallocWindow"
    att = drive(window, lambda i: None, 10)
    assert any("native heap grew" in n for n in att.notes)


def test_active_memray_tracker_falls_back_with_a_note(tmp_path):
    import memray

    with memray.Tracker(tmp_path / "outer.bin"):
        att = drive(open_window("memray", iterations=40), make_python_leak(), 40)
    assert any("another memray tracker is already active" in n for n in att.notes)
    assert att.sites and att.sites[0].source == "tracemalloc"


@pytest.mark.parametrize("limit", [None, 5, 40])
def test_tracemalloc_state_is_restored(limit):
    if limit is not None:
        tracemalloc.start(limit)
    try:
        att = drive(open_window("tracemalloc", iterations=20, frames=25), make_python_leak(), 20)
        assert tracemalloc.is_tracing() == (limit is not None)
        if limit is not None:
            assert tracemalloc.get_traceback_limit() == limit
            assert any("already tracing" in n for n in att.notes) == (limit < 25)
        assert att.sites
    finally:
        tracemalloc.stop()


def test_async_step_and_loop_frames(no_temp_leftovers):
    kept: list[bytes] = []

    async def step() -> None:
        await asyncio.sleep(0)
        kept.append(bytes(200) + b"!")  # ASYNCLEAK

    async def runner() -> Attribution:
        window = open_window("tracemalloc", iterations=40)
        for _ in range(3):
            await step()
        gc.collect()
        window.start()
        for i in range(1, 41):
            await asyncio.create_task(step())
            gc.collect()
            window.checkpoint(i)
        return window.finish(40)

    att = asyncio.run(runner())
    assert att.sites[0].location == f"{os.path.relpath(HERE)}:{line_of('ASYNCLEAK')}"
    # The event loop only called the step: its frames are not in the traceback.
    assert not any(f"{os.sep}asyncio{os.sep}" in t for t in att.sites[0].traceback)


def test_thread_started_by_the_step():
    kept: list[bytes] = []

    def worker() -> None:
        kept.append(bytes(300) + b"!")  # THREADLEAK

    def step(i: int) -> None:
        t = threading.Thread(target=worker)
        t.start()
        t.join()

    att = drive(open_window("tracemalloc", iterations=40), step, 40)
    assert att.sites[0].location == f"{os.path.relpath(HERE)}:{line_of('THREADLEAK')}"
    assert not any("threading.py" in t for t in att.sites[0].traceback)


def test_no_other_thread_runs_while_a_memray_tracker_starts_or_stops():
    """The guard around a tracker's start and stop keeps the GIL here; without it a spinning thread gets turns."""
    from leakcheck.attribution.memray_window import _gil_kept

    stop = threading.Event()
    turns = [0]

    def spin() -> None:
        while not stop.is_set():
            turns[0] += 1

    def turns_while_busy(seconds: float) -> int:
        # Pure Python work that never releases the GIL by itself.
        before = turns[0]
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return turns[0] - before

    interval = sys.getswitchinterval()
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        unguarded = max(turns_while_busy(0.1) for _ in range(5))
        with _gil_kept():
            guarded = turns_while_busy(0.05)
    finally:
        stop.set()
        spinner.join()
    assert unguarded > 0
    assert guarded == 0
    assert sys.getswitchinterval() == interval


def test_off_mode_and_bad_arguments():
    att = drive(open_window("off", iterations=5), make_python_leak(), 5)
    assert att == Attribution(window_iterations=5)
    with pytest.raises(ConfigError, match="unknown mode"):
        open_window("valgrind", iterations=5)
    with pytest.raises(ConfigError, match=">= 1"):
        open_window("tracemalloc", iterations=0)


# --- the pieces --------------------------------------------------------------------------


def test_tracking_scores():
    xs = [0, 10, 20, 30, 40]
    assert tracking(xs, [0, 100, 200, 300, 400]) == pytest.approx(1.0)
    assert tracking(xs, [0, 0, 500, 500, 500]) < 0.5  # one-off
    assert tracking(xs, [0, 64, 64, 64, 64]) < 0.5  # plateau
    assert tracking(xs, [5, 5, 5, 5, 5]) == 0.0


def test_count_regularity():
    assert count_regularity(100, 100) == 1.0
    assert count_regularity(300, 100) == 1.0
    assert count_regularity(1, 100) == pytest.approx(0.01)
    assert count_regularity(0, 100) == 0.0


def test_clean_stack_drops_harness_and_leading_loop_frames():
    user = (HERE, 10, "f")
    loop = (asyncio.__file__.replace("__init__.py", "base_events.py"), 600, "run_once")
    harness = (os.path.join(os.path.dirname(memray_window.__file__), "x.py"), 1, "g")
    assert clean_stack([harness, user]) is None  # the harness's own allocation
    kept, location = clean_stack([user, harness, loop])  # innermost first
    assert kept == (user,) and location == user
    assert clean_stack([loop]) is None
