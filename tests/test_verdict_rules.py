"""The stairs and slow-growth rules of the verdict, on synthetic series, both ways."""

from __future__ import annotations

import random

from leakcheck import Verdict
from leakcheck.verdict import SLOW_SHARE, judge

LIMIT = 32.0


def _series(n: int, f: object, every: int = 10, noise: float = 0.0, seed: int = 1) -> tuple[list[float], list[float]]:
    rnd = random.Random(seed)
    x = [float(every * i) for i in range(1, n + 1)]
    return x, [f(v) + rnd.uniform(-noise, noise) for v in x]  # type: ignore[operator]


def test_stairs_every_100_iterations_are_unbounded() -> None:
    x, y = _series(100, lambda it: 262144.0 * (it // 100), noise=50)
    jd = judge(x, y, LIMIT)
    assert jd.verdict is Verdict.UNBOUNDED and jd.rule == "stairs", jd


def test_stairs_that_are_cleared_are_not_unbounded() -> None:
    x, y = _series(100, lambda it: 262144.0 * ((it % 500) // 100), noise=50)
    assert judge(x, y, LIMIT).verdict is not Verdict.UNBOUNDED


def test_one_or_two_stairs_so_far_are_measured_longer() -> None:
    x, y = _series(20, lambda it: 262144.0 * (it // 150), noise=50)
    assert judge(x, y, LIMIT).verdict is Verdict.INCONCLUSIVE


def test_a_one_off_step_long_ago_is_bounded() -> None:
    x, y = _series(200, lambda it: 262144.0 * (it >= 150), noise=50)
    assert judge(x, y, LIMIT).verdict is Verdict.BOUNDED


def test_a_small_slope_is_measured_longer_then_judged() -> None:
    rate = 2 * SLOW_SHARE * LIMIT  # a fifth of the limit
    x, y = _series(400, lambda it: rate * it, noise=20)
    assert judge(x, y, LIMIT).verdict is Verdict.INCONCLUSIVE
    final = judge(x, y, LIMIT, long_run=True)
    assert final.verdict is Verdict.UNBOUNDED and final.rule == "slow", final


def test_a_slow_fill_that_stops_before_the_last_quarter_is_bounded() -> None:
    rate = 2 * SLOW_SHARE * LIMIT
    x, y = _series(400, lambda it: rate * min(it, 2800), noise=20)
    final = judge(x, y, LIMIT, long_run=True)
    assert final.verdict is Verdict.BOUNDED, final


def test_a_slope_far_under_the_limit_stays_bounded() -> None:
    x, y = _series(400, lambda it: 0.2 * SLOW_SHARE * LIMIT * it, noise=20)
    assert judge(x, y, LIMIT, long_run=True).verdict is Verdict.BOUNDED


def _string_buffer(leak: float, floor_after_clear: float) -> tuple[list[float], list[float]]:
    """An ``io.StringIO`` log cleared at 64,000 characters, as the native heap reads it (+ ``leak`` B/iteration).

    Until its first clear the buffer is an ASCII accumulator (~9 B/iteration); after it, a UCS-4 array
    four times as wide refills ~11x faster, and a 4,000-iteration cap cuts the second tooth short.
    Where the clear leaves the floor (``floor_after_clear``) depends on the heap's layout.
    """

    def capacity(content: float) -> float:  # realloc steps: CPython over-allocates by an eighth
        cap = 512.0
        while cap < content:
            cap = cap * 1.125 + 64
        return cap

    def reading(it: float) -> float:
        tooth = capacity(9 * it) if it < 2770 else floor_after_clear + capacity(100 * (it - 2770))
        return 4_524_352 + tooth + leak * it

    return _series(400, reading)


def test_a_sawtooth_whose_second_tooth_is_steeper_is_not_a_slow_leak() -> None:
    # The floor came back to within ~2 KiB of where it started: a fraction of what the slope claims.
    for floor in (16.0, 640.0, 1700.0, 4000.0):
        x, y = _string_buffer(0.0, floor)
        final = judge(x, y, LIMIT, long_run=True)
        assert final.verdict is not Verdict.UNBOUNDED, (floor, final)


def test_a_leak_under_the_same_sawtooth_is_caught() -> None:
    for leak in (8.0, 16.0):  # a quarter and a half of the limit: slow leaks
        x, y = _string_buffer(leak, 640.0)
        final = judge(x, y, LIMIT, long_run=True)
        assert final.verdict is Verdict.UNBOUNDED, (leak, final)
