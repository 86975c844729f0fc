"""Issue 12, both ways: mapped memory, resources the GC had to close, native heap beyond glibc.

The seeded traps of ``traps/unseen.py`` must be caught by the probe they
name and the clean twins must pass; the unclosed-resources recorder must
count whatever the warning filters say and leave the user's filters and
hooks as they were; the native heap read through ``psutil.heap_info()``
(forced here, as on macOS) must catch a 64-byte malloc per call and pass
its clean twin.
"""

from __future__ import annotations

import ctypes
import mmap
import subprocess
import sys
import warnings

import pytest
from conftest import check_trap
from traps.leaks import _LIBC
from traps.leaks import LEAKS as BASE_LEAKS
from traps.unseen import CLEAN, LEAKS, unclosed_file

import leakcheck
from leakcheck import CheckResult, ConfigError, Verdict
from leakcheck.attribution import memray_unavailable_reason
from leakcheck.probes import NativeHeap, make_probes
from leakcheck.probes.unclosed import RECORDER
from leakcheck.results import UnclosedResource

pytestmark = pytest.mark.usefixtures("release_traps")


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_seeded_leak_is_caught_by_its_measure(name: str) -> None:
    trap = LEAKS[name]()
    result = check_trap(trap)
    finding = result.finding(trap.measure)
    assert finding.verdict is Verdict.UNBOUNDED, str(result)
    assert finding.growth_per_iteration > finding.limit, str(result)
    assert result.leaking


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_twin_passes(name: str) -> None:
    trap = CLEAN[name]()
    result = check_trap(trap)
    assert not result.leaking, str(result)
    assert result.finding("mapped").verdict is Verdict.BOUNDED, str(result)
    assert result.finding("unclosed").verdict is Verdict.BOUNDED, str(result)


def test_a_mapping_kept_per_call_reads_its_size_not_its_resident_pages() -> None:
    result = check_trap(LEAKS["mmap_kept"]())
    assert 60 * 1024 <= result.finding("mapped").growth_per_iteration <= 68 * 1024, str(result)
    assert result.finding("rss").growth_per_iteration < 16 * 1024, str(result)  # one page per call
    assert "LEAK Mapped memory (virtual size): unbounded, 64" in str(result)


def test_unclosed_file_names_the_kind_once_with_count_and_allocation_site() -> None:
    result = check_trap(unclosed_file(), attribution="tracemalloc")
    assert len(result.unclosed) == 1, str(result)
    kind = result.unclosed[0]
    assert kind.source == "ResourceWarning"
    assert kind.message.startswith("unclosed file <_io.TextIOWrapper name='")
    assert kind.count == result.iterations  # one per measured iteration, none from the warm-up
    assert f"{kind.count} \u00d7 unclosed file <_io.TextIOWrapper name=" in str(result)
    assert any("traps/unseen.py" in frame for frame in kind.traceback), kind.traceback
    assert "allocated at (most recent call last):" in str(result)


def test_without_tracemalloc_no_allocation_site_is_claimed() -> None:
    result = check_trap(unclosed_file())
    assert result.unclosed and not result.unclosed[0].traceback


def test_one_unclosed_file_in_warm_up_is_not_counted() -> None:
    result = check_trap(CLEAN["warmup_unclosed_once"]())
    assert not result.unclosed, str(result)


def test_counted_whatever_the_filters_say_and_the_filters_restored() -> None:
    hook = sys.unraisablehook
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("error", ResourceWarning)  # would raise inside a finalizer: ignored
        warnings.simplefilter("always", UserWarning)
        filters = list(warnings.filters)
        show = warnings._showwarnmsg  # type: ignore[attr-defined]
        trap = unclosed_file()

        def step() -> None:
            trap.step()
            warnings.warn("the user's own warning", UserWarning, stacklevel=1)

        result = leakcheck.check(step, teardown=trap.teardown, attribution="off")
        assert warnings.filters == filters
        assert warnings._showwarnmsg is show  # type: ignore[attr-defined]
    assert sys.unraisablehook is hook
    assert not RECORDER.active
    assert result.finding("unclosed").verdict is Verdict.UNBOUNDED, str(result)
    # Other warnings still reach the user's display; ResourceWarnings were counted instead.
    assert any(issubclass(w.category, UserWarning) for w in seen)
    assert not any(issubclass(w.category, ResourceWarning) for w in seen)


def test_allow_unclosed_patterns_are_not_counted() -> None:
    result = check_trap(unclosed_file(), allow_unclosed=["unclosed file <_io.TextIOWrapper*"])
    assert not result.leaking, str(result)
    assert not result.unclosed


class _BrokenFinalizer:
    def __del__(self) -> None:
        raise RuntimeError("close failed")


class _Finalizer:
    def __del__(self) -> None:
        pass


def test_a_finalizer_failing_every_call_is_counted_through_the_unraisable_hook() -> None:
    result = leakcheck.check(_BrokenFinalizer, attribution="off")
    assert result.finding("unclosed").verdict is Verdict.UNBOUNDED, str(result)
    (kind,) = result.unclosed
    assert kind.source == "unraisable"
    assert "RuntimeError: close failed" in kind.message


def test_a_finalizer_that_works_is_not_counted() -> None:
    result = leakcheck.check(_Finalizer, attribution="off")
    assert not result.leaking and not result.unclosed, str(result)


def test_unclosed_round_trips_through_results_json() -> None:
    result = check_trap(unclosed_file(), attribution="tracemalloc")
    again = CheckResult.from_dict(result.to_dict())
    assert again.unclosed == result.unclosed
    assert isinstance(again.unclosed[0], UnclosedResource) and again.unclosed[0].traceback


def _malloc_free() -> None:
    _LIBC.free(_LIBC.malloc(64))


@pytest.fixture
def psutil_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKCHECK_NATIVE_HEAP", "psutil")


def test_forced_psutil_heap_is_used_and_sees_a_malloc(psutil_heap: None) -> None:
    (probe,) = make_probes(["native_heap"])
    assert isinstance(probe, NativeHeap) and probe.source == "psutil"
    assert probe.unavailable() is None
    before = probe.read()
    ptr = _LIBC.malloc(1 << 20)
    try:
        assert probe.read() - before >= 1 << 20
    finally:
        _LIBC.free(ctypes.c_void_p(ptr))


def test_native_leak_caught_through_psutil_heap(psutil_heap: None) -> None:
    trap = BASE_LEAKS["malloc_64"]()
    result = check_trap(trap)
    assert result.finding("native_heap").verdict is Verdict.UNBOUNDED, str(result)


@pytest.mark.parametrize("step", [_malloc_free, CLEAN["mmap_20mb"]().step], ids=["malloc_free", "big_mmap"])
def test_native_clean_twin_passes_through_psutil_heap(psutil_heap: None, step: object) -> None:
    result = leakcheck.check(step, attribution="off")
    assert result.finding("native_heap").verdict is Verdict.BOUNDED, str(result)


def test_a_bad_native_heap_source_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKCHECK_NATIVE_HEAP", "jemalloc")
    with pytest.raises(ConfigError, match="LEAKCHECK_NATIVE_HEAP.*jemalloc.*auto, glibc, psutil"):
        make_probes(["native_heap"])


_KEPT_MAPS: list[mmap.mmap] = []


def _python_mmap_kept() -> None:
    m = mmap.mmap(-1, 64 * 1024)
    m[0] = 1
    _KEPT_MAPS.append(m)


@pytest.mark.skipif(memray_unavailable_reason() is not None, reason="memray cannot run here")
def test_memray_names_the_mmap_site_it_sees() -> None:
    try:
        # py_blocks off: the kept mmap objects are a Python leak too; the mapping is the point here
        result = leakcheck.check(_python_mmap_kept, attribution="memray", limits={"py_blocks": 100})
    finally:
        for m in _KEPT_MAPS:
            m.close()
        _KEPT_MAPS.clear()
    assert result.finding("mapped").verdict is Verdict.UNBOUNDED, str(result)
    assert result.attribution is not None
    (note,) = [n for n in result.attribution.notes if n.startswith("mapped memory grew")]
    assert "memray saw mmap calls left mapped at" in note and "_python_mmap_kept" in note, note


@pytest.mark.skipif(memray_unavailable_reason() is not None, reason="memray cannot run here")
def test_an_mmap_memray_cannot_see_points_at_valgrind() -> None:
    result = check_trap(LEAKS["mmap_kept"](), attribution="memray")
    assert result.attribution is not None
    (note,) = [n for n in result.attribution.notes if n.startswith("mapped memory grew")]
    assert "memray saw only 0 B/iteration" in note and "valgrind" in note, note


PLUGIN_TESTS = """
import os
import pytest

PATH = os.path.join(os.path.dirname(__file__), "data.txt")

@pytest.mark.leak
def test_unclosed():
    open(PATH).read()

@pytest.mark.leak
def test_closed():
    with open(PATH) as fh:
        fh.read()
"""


def test_plugin_fails_an_unclosed_file_and_passes_its_twin(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nleak_attribution = off\nfilterwarnings = error\n"
    )
    pytester.makepyfile(test_files=PLUGIN_TESTS)
    (pytester.path / "data.txt").write_text("x\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*LEAK Unclosed resources (closed by the GC): unbounded*",
            "*closed by the garbage collector, not by the code*",
            "* \u00d7 unclosed file <_io.TextIOWrapper name='*data.txt' mode='r'*",
        ]
    )


def test_plugin_allow_unclosed_flag(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nleak_attribution = off\n")
    pytester.makepyfile(test_files=PLUGIN_TESTS)
    (pytester.path / "data.txt").write_text("x\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--leak-allow-unclosed=unclosed file*")
    result.assert_outcomes(passed=2)


def test_dropped_popens_are_reaped_before_the_next_test() -> None:
    # Popen.__del__ parks a running child in subprocess._active; left there, its pipe is freed
    # unclosed when a later test starts a process, and that test fails on the ResourceWarning.
    from traps.leaks import release_all
    from traps.unseen import dropped_popen

    check_trap(dropped_popen())
    assert subprocess._active  # type: ignore[attr-defined]
    release_all()
    assert not subprocess._active  # type: ignore[attr-defined]
