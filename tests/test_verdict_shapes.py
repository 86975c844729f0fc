"""Issue 11's hard shapes, both ways, with the default settings unless a profile is named."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from conftest import check_trap
from traps.shapes import late_leak, one_in, slow_ring, stairs, warning_per_call

from leakcheck import Verdict


@pytest.mark.parametrize("every", [100, 150, 200])
def test_a_native_leak_every_kth_call_is_caught(every: int) -> None:
    result = check_trap(stairs(every), probes=["native_heap", "py_blocks"])
    finding = result.finding("native_heap")
    assert finding.verdict is Verdict.UNBOUNDED, str(result)
    assert "in steps" in finding.note, str(result)
    assert result.leaking


def test_stairs_that_come_back_down_pass() -> None:
    result = check_trap(stairs(100, back_every=500), probes=["native_heap", "py_blocks"])
    assert not result.leaking, str(result)


def test_one_object_per_ten_calls_is_caught() -> None:
    result = check_trap(one_in(10), probes=["py_blocks"])
    finding = result.finding("py_blocks")
    assert finding.verdict is Verdict.UNBOUNDED, str(result)
    assert 0.05 < finding.growth_per_iteration < finding.limit, str(result)
    assert "slowly" in finding.note


def test_a_cache_filling_one_entry_per_ten_calls_to_300_passes() -> None:
    result = check_trap(one_in(10, cap=300), probes=["py_blocks"])
    assert not result.leaking, str(result)
    assert result.iterations > 3000, "the plateau was never measured"


def test_a_leak_after_1000_flat_calls_is_caught_by_the_nightly_profile() -> None:
    nightly = check_trap(late_leak(1000), probes=["py_blocks"], profile="nightly")
    assert nightly.finding("py_blocks").verdict is Verdict.UNBOUNDED, str(nightly)
    # The default profile stays as cheap as before for a test that is flat so far.
    default = check_trap(late_leak(1000), probes=["py_blocks"])
    assert default.iterations == 200 and not default.leaking, str(default)


@pytest.mark.slow
def test_a_ring_of_1000_records_with_a_slow_step_passes() -> None:
    # Defaults: the time budget counts the step's own time, so load does not cut the fill short.
    result = check_trap(slow_ring(1000, 0.0025), probes=["py_blocks", "native_heap"])
    assert not result.leaking, str(result)
    assert result.iterations >= 2000, str(result)


@pytest.fixture
def _default_warning_filters() -> Iterator[None]:
    # Production's filters: "default" prints each distinct warning once per location.
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda *args, **kwargs: None  # shown once per text: thousands here
        yield


@pytest.mark.usefixtures("_default_warning_filters")
def test_a_warning_with_a_new_message_per_call_is_a_leak() -> None:
    result = check_trap(warning_per_call(unique=True), probes=["py_blocks"])
    assert result.finding("py_blocks").verdict is Verdict.UNBOUNDED, str(result)


@pytest.mark.usefixtures("_default_warning_filters")
def test_the_same_warning_repeated_is_not_a_leak() -> None:
    result = check_trap(warning_per_call(unique=False), probes=["py_blocks"])
    assert not result.leaking, str(result)


def test_an_unclear_measure_far_above_its_limit_is_not_within_limits() -> None:
    # Cut short at 300 iterations: two stairs of 256 KiB, too few to call, far above 32 B/iteration.
    result = check_trap(stairs(150), probes=["native_heap"], iterations=300, max_iterations=300)
    text = str(result)
    assert result.finding("native_heap").verdict is Verdict.INCONCLUSIVE, text
    assert "INCONCLUSIVE Native heap" in text and "its limit overall" in text, text
    assert "within limits" not in text, text


def test_a_limit_the_user_sets_is_a_tolerance_for_slow_growth() -> None:
    # The same slow leak that the default limit catches passes under limits= set by the user.
    result = check_trap(one_in(10), probes=["py_blocks"], limits={"py_blocks": 0.5})
    assert not result.leaking, str(result)
