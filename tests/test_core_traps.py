"""The detector both ways, through the API: seeded leaks caught, clean look-alikes passed.

Every seeded leak must be flagged by the measure it grows (and handles left
behind listed item by item); every clean trap must pass, also when run
again and again in one process (the slow test).
"""

from __future__ import annotations

import re

import pytest
from conftest import check_trap
from traps.clean import CLEAN, bounded_ring, long_fill
from traps.leaks import LEAKS

import leakcheck
from leakcheck import Verdict

pytestmark = pytest.mark.usefixtures("release_traps")


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_seeded_leak_is_caught_by_its_measure(name: str) -> None:
    trap = LEAKS[name]()
    result = check_trap(trap)
    assert result.leaking, str(result)
    finding = result.finding(trap.measure)
    assert finding.verdict is Verdict.UNBOUNDED, str(result)
    assert finding.growth_per_iteration > finding.limit
    assert finding.title in str(result)
    if trap.handle_kind:
        assert result.handles, str(result)
        assert {h.kind for h in result.handles} == {trap.handle_kind}, str(result)
    else:
        assert not result.handles, str(result)


def test_smallest_native_leak_reads_about_64_bytes() -> None:
    result = check_trap(LEAKS["malloc_64"]())
    growth = result.finding("native_heap").growth_per_iteration
    assert 64 <= growth <= 100, str(result)  # 64 B + malloc's chunk header, rounded to 16
    assert result.finding("py_blocks").verdict is Verdict.BOUNDED, str(result)


def test_10_kib_leak_reads_10_kib_per_iteration() -> None:
    result = check_trap(LEAKS["kib_10"]())
    growth = result.finding("native_heap").growth_per_iteration
    assert 10 * 1024 <= growth <= 11 * 1024, str(result)
    assert re.search(r"LEAK Native heap \(malloc in use\): unbounded, 10\.\d KiB/iteration", str(result))


def test_socket_handle_names_its_address() -> None:
    result = check_trap(LEAKS["kept_socket"](), iterations=20, warmup=2)
    assert all("127.0.0.1:" in h.description for h in result.handles), result.handles[:3]
    assert "LISTEN" in result.handles[0].description


def test_file_handle_names_its_path() -> None:
    result = check_trap(LEAKS["open_file"](), iterations=20, warmup=2)
    assert all(h.description.endswith("/dev/null") for h in result.handles), result.handles[:3]


def test_thread_handle_names_thread_and_creation_stack() -> None:
    result = check_trap(LEAKS["blocked_thread"](), iterations=20, warmup=2)
    handle = result.handles[0]
    assert "'blocked-worker'" in handle.description
    assert "daemon=True" in handle.description
    assert "traps/leaks.py" in handle.stack and "in step" in handle.stack, handle.stack
    text = str(result)
    # One entry for all the threads, with the count and the line that started them.
    assert len(result.handles) == 1 and result.handles[0].count >= 20, result.handles
    assert f"{result.handles[0].count} \u00d7 thread: 'blocked-worker'" in text
    assert "started at tests/traps/leaks.py:" in text and " in step" in text


def test_task_handle_names_coroutine_and_creation_stack() -> None:
    result = check_trap(LEAKS["pending_task"](), iterations=20, warmup=2)
    handle = result.handles[0]
    assert handle.kind == "task"
    assert "_forever()" in handle.description, handle
    assert "created at:" in handle.stack and "traps/leaks.py" in handle.stack, handle.stack


def test_child_handle_names_the_process() -> None:
    result = check_trap(LEAKS["zombie_child"](), iterations=10, warmup=1)
    assert all(h.description.startswith("pid ") for h in result.handles), result.handles[:3]
    assert any("exited, never waited for" in h.description or "python" in h.description for h in result.handles)


def test_children_read_from_proc_match_psutils_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot's own reading of /proc names the children psutil's scan of every process finds."""
    import subprocess
    import sys
    import threading

    from leakcheck import handles
    from leakcheck.probes import handle_counts

    if handle_counts.child_pids() is None:
        pytest.skip("no /proc/self/task/*/children here: the psutil scan is the only path")
    kids: list[subprocess.Popen[bytes]] = []
    # One child of the main thread, one of another (still running) thread: /proc lists each per thread.
    kids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]))
    started, stop = threading.Event(), threading.Event()

    def spawn() -> None:
        kids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]))
        started.set()
        stop.wait(30)

    helper = threading.Thread(target=spawn)
    helper.start()
    try:
        assert started.wait(10)
        from_proc = handles._children()
        monkeypatch.setattr(handle_counts, "child_pids", lambda: None)
        from_psutil = handles._children()
    finally:
        stop.set()
        helper.join()
        for kid in kids:
            kid.kill()
            kid.wait()
    assert set(from_proc) == {kid.pid for kid in kids}
    assert from_proc.keys() == from_psutil.keys()


def test_file_left_on_disk_is_listed_by_path() -> None:
    result = check_trap(LEAKS["temp_file"](), iterations=20, warmup=2)
    assert all("leakcheck-trap-" in h.description for h in result.handles), result.handles[:3]
    assert "traps/leaks.py" in result.handles[0].stack


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_trap_passes(name: str) -> None:
    trap = CLEAN[name]()
    result = check_trap(trap)
    assert not result.leaking, str(result)
    assert not result.handles


@pytest.mark.slow
def test_clean_traps_pass_again_and_again() -> None:
    """Five rounds of every clean trap in one process: zero false positives."""
    failures = []
    for round_ in range(5):
        for name, make in CLEAN.items():
            result = check_trap(make())
            if result.leaking:
                failures.append(f"round {round_} {name}:\n{result}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_random_size_ring_never_reads_as_a_leak(seed: int) -> None:
    """Noisy, autocorrelated native-heap readings (σ ≈ 13 KiB) and glibc's tcache filling up."""
    result = check_trap(bounded_ring(seed), probes=["native_heap", "py_blocks"])
    assert not result.leaking, str(result)


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 2, 5])
def test_random_size_ring_sampled_densely_never_reads_as_a_leak(every: int) -> None:
    # With every iteration sampled, the ring (32 slots) is still filling after
    # the 20 warm-up iterations; the verdict must not replicate on the second span.
    for seed in range(8):
        trap = bounded_ring(seed)
        result = leakcheck.check(
            trap.step,
            setup=trap.setup,
            teardown=trap.teardown,
            probes=["native_heap", "py_blocks"],
            sample_every=every,
            attribution="off",
        )
        assert not result.leaking, f"seed {seed}, every {every}:\n{result}"


def test_lru_cache_whose_small_int_keys_give_way_is_not_a_leak() -> None:
    # Keys 0..255 are cached small ints; once the cache (128 entries) evicts
    # them for keys >= 256, each entry holds one more allocated int: +1 block
    # per iteration for 128 iterations, landing in the confirmation span.
    # Bounded all the same: the last span is flat.
    import functools
    import itertools

    keys = itertools.count()

    @functools.lru_cache(maxsize=128)
    def render(key: int) -> str:
        return f"<li>{key}</li>" * 4

    result = leakcheck.check(lambda: render(next(keys)), probes=["py_blocks"], attribution="off")
    assert not result.leaking, str(result)
    assert result.iterations > 400, "the verdict needed the extra span to see the plateau"


def test_a_fill_outlasting_the_spans_is_followed_to_its_plateau() -> None:
    # Both ways: with measuring past the usual spans switched off, the same
    # fill (1,500 iterations of +2 blocks) reads as a leak at 2 x 200.
    followed = check_trap(long_fill(), probes=["py_blocks"])
    assert not followed.leaking, str(followed)
    assert followed.iterations > 1500, "the plateau was never measured"
    cut_short = check_trap(long_fill(), probes=["py_blocks"], extend_time=0)
    assert cut_short.leaking and cut_short.iterations == 400, str(cut_short)


def test_heap_growth_in_a_fast_step_is_followed_then_fails() -> None:
    result = check_trap(LEAKS["small_int"](), probes=["py_blocks"])
    assert result.leaking, str(result)
    assert 400 < result.iterations <= 4000  # doubled past the spans, within the cap


def test_a_handle_leak_is_not_followed_past_the_spans() -> None:
    # Each extra pass would leak more descriptors, and a count needs no more evidence.
    result = check_trap(LEAKS["open_file"](), probes=["fds", "py_blocks"])
    assert result.finding("fds").verdict is Verdict.UNBOUNDED, str(result)
    assert result.iterations == 400, str(result)


def test_no_step_in_the_heap_between_passes() -> None:
    # A sawtooth (two blocks per call, cleared every 200 calls) makes the check
    # measure a second pass. The first pass's verdicts and the free lists its
    # statistics filled must not show up as a one-off step in that pass.
    held: list[object] = []

    def step() -> None:
        held.append(object())
        held.append(object())
        if len(held) >= 400:
            held.clear()

    result = leakcheck.check(step, probes=["py_blocks"], sample_every=10, attribution="off")
    assert not result.leaking, str(result)
    series = result.samples[0]
    steps = [b - a for a, b in zip(series.values, series.values[1:]) if b > a]
    assert max(steps) <= 25, f"a rise of {max(steps)} blocks in one sample: the harness reads in the heap"
