"""Verdict statistics: tables either side of the limit, plateaus, sawtooths, noise, known values."""

from __future__ import annotations

import math
import random

import pytest

from leakcheck.results import Verdict
from leakcheck.verdict import (
    SLOW_SHARE,
    _mk_statistic,
    _pair_slopes,
    autocorrelation_factor,
    judge,
    mann_kendall,
    slope_z,
    theil_sen,
)

X = [float(i * 5) for i in range(41)]  # a sample every 5 iterations over 200


def _line(slope: float, noise: float = 0.0, seed: int = 0, x: list[float] = X) -> list[float]:
    rng = random.Random(seed)
    return [1e6 + slope * v + rng.gauss(0, noise) for v in x]


# -- known values -----------------------------------------------------------


def test_theil_sen_known_slope_and_outlier_robustness() -> None:
    x = [0.0, 1.0, 2.0, 3.0, 4.0]
    y = [1.0, 3.0, 5.0, 7.0, 9.0]
    assert theil_sen(x, y)[0] == 2.0
    y_out = [1.0, 3.0, 500.0, 7.0, 9.0]  # one wild reading
    assert theil_sen(x, y_out)[0] == 2.0
    # median of the 10 pairwise slopes of this hand-checked series
    x2, y2 = [1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 2.0, 8.0]
    slopes = sorted([3.0, 0.5, 7 / 3, -2.0, 2.0, 6.0])
    assert theil_sen(x2, y2)[0] == pytest.approx((slopes[2] + slopes[3]) / 2)


def test_theil_sen_interval_contains_slope() -> None:
    slope, lo, hi = theil_sen(X, _line(3.0, noise=50.0, seed=1))
    assert lo <= slope <= hi
    assert lo < 3.0 < hi


def test_mann_kendall_known_values() -> None:
    # strictly increasing, n=10: S = 45, var = 10*9*25/18 = 125, z = 44/sqrt(125)
    z, p = mann_kendall([float(i) for i in range(10)])
    assert z == pytest.approx(44 / math.sqrt(125))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    z, p = mann_kendall([float(-i) for i in range(10)])
    assert z == pytest.approx(-44 / math.sqrt(125))
    assert mann_kendall([1.0, 1.0, 1.0, 1.0]) == (0.0, 1.0)  # all ties
    assert mann_kendall([1.0, 2.0]) == (0.0, 1.0)  # too short
    # a hand-computed case with ties: y = 1 2 2 3 -> S = 5, var = (4*3*13 - 2*1*9)/18 = 7.667
    z, _ = mann_kendall([1.0, 2.0, 2.0, 3.0])
    assert z == pytest.approx(4 / math.sqrt((4 * 3 * 13 - 2 * 1 * 9) / 18))


def _naive_s(y: list[float]) -> int:
    return sum((y[j] > y[i]) - (y[j] < y[i]) for i in range(len(y)) for j in range(i + 1, len(y)))


def _naive_theil_sen(x: list[float], y: list[float], z: float = 1.96) -> tuple[float, float, float]:
    slopes = sorted((y[b] - y[a]) / (x[b] - x[a]) for a in range(len(x)) for b in range(a + 1, len(x)) if x[b] != x[a])
    if not slopes:
        return 0.0, 0.0, 0.0
    ties = sum(t * (t - 1) * (2 * t + 5) for t in (y.count(v) for v in set(y)) if t > 1)
    n, m = len(y), len(slopes)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18
    c = z * math.sqrt(var) if var > 0 else 0.0
    lo, hi = int(max(0, math.floor((m - c) / 2) - 1)), int(min(m - 1, math.ceil((m + c) / 2)))
    mid = (slopes[(m - 1) // 2] + slopes[m // 2]) / 2
    return mid, slopes[lo], slopes[hi]


@pytest.mark.parametrize("seed", range(12))
def test_fast_statistics_equal_the_definitions(seed: int) -> None:
    # S by bisection, the pair slopes by lag (even spacing) or by comprehension (any x), and the
    # flat-series shortcuts are exactly the double loops they replaced: ties (integer counts),
    # steady lines, noise, flat series, repeated and uneven x values.
    rng = random.Random(seed)
    n = rng.choice([2, 3, 9, 50, 200])
    spacing = seed % 4
    x = [
        float(i * 10)  # evenly spaced whole numbers: the lag path
        if spacing == 0
        else float(i // 2)  # repeated x values: pairs with no slope are left out
        if spacing == 1
        else i * 3 + rng.random()  # uneven
        if spacing == 2
        else float(i * 7 + (i % 3 == 0))  # whole numbers, unevenly spaced
        for i in range(n)
    ]
    shape = seed % 3
    y = [float(rng.randint(0, 4)) if shape == 0 else i + rng.gauss(0, 2) if shape == 1 else 5.0 for i in range(n)]
    assert _mk_statistic(y) == _naive_s(y)
    expected = [(y[b] - y[a]) / (x[b] - x[a]) for a in range(n) for b in range(a + 1, n) if x[b] != x[a]]
    assert sorted(_pair_slopes(x, y)) == sorted(expected)  # theil_sen sorts them: their order is free
    assert theil_sen(x, y) == _naive_theil_sen(x, y)
    if len(set(y)) == 1:
        assert mann_kendall(y) == (0.0, 1.0)
    assert _mk_statistic([1.0, math.nan, 2.0, 0.0]) == _naive_s([1.0, math.nan, 2.0, 0.0])
    assert theil_sen([0.0, 1.0, 2.0], [math.nan] * 3) != (0.0, 0.0, 0.0)  # NaN is never "flat"


def test_autocorrelation_factor() -> None:
    rng = random.Random(3)
    white = [rng.gauss(0, 1) for _ in range(400)]
    assert autocorrelation_factor(white) < 1.3
    walk = [0.0]
    for _ in range(399):
        walk.append(0.9 * walk[-1] + rng.gauss(0, 1))
    assert autocorrelation_factor(walk) > 5
    assert autocorrelation_factor([1.0, 1.0, 1.0, 1.0, 1.0]) == 1.0
    assert slope_z(X, _line(2.0), 2.0) == math.inf  # exactly on the line


# -- either side of the limit ----------------------------------------------


@pytest.mark.parametrize(
    ("slope", "limit", "expected"),
    [
        (0.45, 0.5, Verdict.BOUNDED),  # a block per ~2 iterations, just under
        (0.55, 0.5, Verdict.UNBOUNDED),
        (30.0, 32.0, Verdict.BOUNDED),
        (34.0, 32.0, Verdict.UNBOUNDED),
        (0.019, 0.02, Verdict.BOUNDED),
        (0.021, 0.02, Verdict.UNBOUNDED),
        (1000.0, 1024.0, Verdict.BOUNDED),
        (1050.0, 1024.0, Verdict.UNBOUNDED),
    ],
)
def test_steady_growth_either_side_of_the_limit(slope: float, limit: float, expected: Verdict) -> None:
    y = _line(slope, noise=limit * 0.2, seed=7)
    jd = judge(X, y, limit)
    # Just under the limit is a slow leak's shape: measured longer, never failed in one pass.
    assert jd.verdict is (Verdict.INCONCLUSIVE if expected is Verdict.BOUNDED else expected), jd
    assert jd.rule == ("slow" if expected is Verdict.BOUNDED else "slope"), jd


@pytest.mark.parametrize("share", [0.07, 0.15])
@pytest.mark.parametrize("limit", [0.5, 32.0, 1024.0])
def test_slow_growth_either_side_of_its_share_at_the_end_of_a_long_run(share: float, limit: float) -> None:
    y = _line(share * limit, noise=limit * 0.05, seed=7)
    jd = judge(X, y, limit, long_run=True)
    expected = Verdict.UNBOUNDED if share > SLOW_SHARE else Verdict.BOUNDED
    assert jd.verdict is expected, jd


@pytest.mark.parametrize("limit", [0.5, 32.0, 16 * 1024.0])
def test_integer_steps_either_side_of_the_limit(limit: float) -> None:
    """Counts grow in whole units: one object every k iterations."""
    below = [math.floor(v * limit * 0.9) for v in X]
    above = [math.floor(v * limit * 1.1) for v in X]
    assert judge(X, below, limit).verdict is Verdict.INCONCLUSIVE  # slow: measured longer
    assert judge(X, above, limit).verdict is Verdict.UNBOUNDED
    far_below = [math.floor(v * limit * 0.05) for v in X]
    assert judge(X, far_below, limit, long_run=True).verdict is Verdict.BOUNDED


def test_flat_and_shrinking_are_bounded() -> None:
    assert judge(X, [100.0] * len(X), 0.5).verdict is Verdict.BOUNDED
    assert judge(X, _line(-5.0), 0.5).verdict is Verdict.BOUNDED


def test_plateau_is_bounded_and_a_late_leak_is_not() -> None:
    # fills at 10 B/iteration for 100 iterations, then flat: the lru_cache shape
    plateau = [min(v, 100.0) * 10 for v in X]
    assert judge(X, plateau, 4.0).verdict is not Verdict.UNBOUNDED
    # flat, then leaking from the middle on: not bounded now, caught over the longer run
    late = [max(0.0, v - 100.0) * 10 for v in X]
    assert judge(X, late, 4.0).verdict is Verdict.INCONCLUSIVE
    x5 = [float(i * 5) for i in range(201)]  # the runner measures up to 5x longer
    assert judge(x5, [max(0.0, v - 100.0) * 10 for v in x5], 4.0).verdict is Verdict.UNBOUNDED


def test_sawtooth_is_not_unbounded() -> None:
    # +1 KiB per iteration, cleared every 50: sampled every 5 iterations
    saw = [1024.0 * (v % 50) for v in X]
    assert judge(X, saw, 32.0).verdict is not Verdict.UNBOUNDED
    # a sawtooth on top of a real leak: the floor keeps rising
    leaky = [1024.0 * (v % 50) + 100.0 * v for v in X]
    assert judge(X, leaky, 32.0).verdict is not Verdict.BOUNDED
    x5 = [float(i * 5) for i in range(201)]
    assert judge(x5, [1024.0 * (v % 50) + 100.0 * v for v in x5], 32.0).verdict is Verdict.UNBOUNDED


def test_too_few_samples_is_inconclusive() -> None:
    jd = judge(X[:5], _line(100.0)[:5], 1.0)
    assert jd.verdict is Verdict.INCONCLUSIVE and "only 5 samples" in jd.reason


@pytest.mark.parametrize("noise", [1.0, 100.0, 10_000.0])
def test_white_noise_gives_no_false_positive(noise: float) -> None:
    limit = noise / 100  # a limit far below the noise: only the statistics protect us
    false = [s for s in range(300) if judge(X, _line(0.0, noise, s), limit).verdict is Verdict.UNBOUNDED]
    assert false == []


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_autocorrelated_noise_gives_no_false_positive(rho: float) -> None:
    """AR(1) noise, as readings of a ring buffer sampled more often than it turns over."""
    bad = []
    for seed in range(200):
        rng = random.Random(seed)
        e, y = 0.0, []
        for _ in X:
            e = rho * e + rng.gauss(0, 1000.0)
            y.append(1e6 + e)
        if judge(X, y, 32.0).verdict is Verdict.UNBOUNDED:
            bad.append(seed)
    assert bad == []


def test_strongly_autocorrelated_noise_is_rarely_unbounded() -> None:
    """rho=0.95 over 41 samples is nearly a random walk: the false-positive rate stays near alpha."""
    bad = 0
    for seed in range(300):
        rng = random.Random(seed)
        e, y = 0.0, []
        for _ in X:
            e = 0.95 * e + rng.gauss(0, 1000.0)
            y.append(1e6 + e)
        bad += judge(X, y, 32.0).verdict is Verdict.UNBOUNDED
    assert bad / 300 <= 0.04


def test_leak_in_noise_is_still_caught() -> None:
    """64 B/iteration under 200 B of white noise (limit 32 B): caught for every seed."""
    missed = [s for s in range(100) if judge(X, _line(64.0, 200.0, s), 32.0).verdict is not Verdict.UNBOUNDED]
    assert missed == []
