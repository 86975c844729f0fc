"""Deciding bounded vs unbounded growth from a series of readings.

The rules, per measure, over the samples taken after the warm-up:

1. *Growing*: the Theil–Sen slope (median of pairwise slopes, robust to
   outliers) exceeds the limit, its confidence interval excludes zero and
   the Mann–Kendall trend test rejects "no trend" at ``alpha``.
2. *Still growing late*: the slope over the last half also exceeds half the
   limit. A cache that fills then stops has a flat last half (a plateau).
3. *The floor rises*: the lowest reading of the last half is above the
   lowest of the first half by a quarter of the growth the slope predicts. A
   sawtooth (a buffer that grows then clears, sqlite pruning its cursor
   weakrefs every ~200 cursors) keeps coming back down; a leak does not.

4. *Above the noise*: the slope stands out from the spread of the readings
   around the line, with that noise's autocorrelation accounted for.
   Mann–Kendall and Sen's interval assume independent samples, and readings
   a few iterations apart often are not (a ring of 32 random-size buffers
   sampled every 10 iterations keeps most of its contents from one sample to
   the next): wandering noise passes a rank test as a trend, while a real
   leak's slope dwarfs its noise.

All four: UNBOUNDED. Not growing, or a plateau: BOUNDED. Growing but a later
check disagrees: INCONCLUSIVE, and the runner measures longer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median

from .results import Evidence, Verdict

__all__ = ["MAX_PAIRS", "Judgement", "autocorrelation_factor", "judge", "mann_kendall", "slope_z", "theil_sen"]

#: Above this many samples, slopes are computed over a regular subsample of
#: pairs: Theil–Sen is O(n²) and the estimate changes little.
MAX_PAIRS = 60_000


def _pair_slopes(x: Sequence[float], y: Sequence[float]) -> list[float]:
    n = len(x)
    step = 1
    while (n // step) * (n // step - 1) // 2 > MAX_PAIRS:
        step += 1
    idx = range(0, n, step)
    slopes = []
    for a in idx:
        xa, ya = x[a], y[a]
        for b in idx:
            if b > a and x[b] != xa:
                slopes.append((y[b] - ya) / (x[b] - xa))
    return slopes


def theil_sen(x: Sequence[float], y: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Theil–Sen slope with Sen's confidence interval: ``(slope, low, high)``."""
    slopes = _pair_slopes(x, y)
    if not slopes:
        return 0.0, 0.0, 0.0
    slopes.sort()
    n_pairs = len(slopes)
    slope = median(slopes)
    var_s = _mk_variance(y)
    c = z * math.sqrt(var_s) if var_s > 0 else 0.0
    lo = int(max(0, math.floor((n_pairs - c) / 2) - 1))
    hi = int(min(n_pairs - 1, math.ceil((n_pairs + c) / 2)))
    return slope, slopes[lo], slopes[hi]


def _mk_variance(y: Sequence[float]) -> float:
    n = len(y)
    counts: dict[float, int] = {}
    for v in y:
        counts[v] = counts.get(v, 0) + 1
    ties = sum(t * (t - 1) * (2 * t + 5) for t in counts.values() if t > 1)
    return (n * (n - 1) * (2 * n + 5) - ties) / 18.0


def mann_kendall(y: Sequence[float]) -> tuple[float, float]:
    """Mann–Kendall trend test: ``(z, two-sided p)``; z > 0 means rising."""
    n = len(y)
    if n < 3:
        return 0.0, 1.0
    s = 0
    for i in range(n - 1):
        yi = y[i]
        for j in range(i + 1, n):
            d = y[j] - yi
            s += (d > 0) - (d < 0)
    var_s = _mk_variance(y)
    if var_s <= 0:
        return 0.0, 1.0
    z = (s - 1) / math.sqrt(var_s) if s > 0 else (s + 1) / math.sqrt(var_s) if s < 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))
    return z, p


def autocorrelation_factor(residuals: Sequence[float], cap: float = 100.0) -> float:
    """Variance inflation ``(1 + r1) / (1 - r1)`` for lag-1 autocorrelated residuals (1 when not).

    The effective number of independent samples is ``n / factor`` (Bayley &
    Hammersley). ``r1`` is corrected for its small-sample bias (it reads low
    by about ``(1 + 4 r1) / n``, Kendall 1954); the factor is capped at ``cap``.
    """
    n = len(residuals)
    if n < 4:
        return 1.0
    mean = sum(residuals) / n
    dev = [r - mean for r in residuals]
    denom = sum(d * d for d in dev)
    if denom <= 0:
        return 1.0
    r1 = sum(dev[i] * dev[i + 1] for i in range(n - 1)) / denom
    if r1 <= 0:
        return 1.0
    r1 += (1 + 4 * r1) / n
    return min(cap, (1 + r1) / (1 - r1)) if r1 < 1 else cap


def slope_z(x: Sequence[float], y: Sequence[float], slope: float) -> float:
    """How many standard errors ``slope`` stands above zero, for autocorrelated noise.

    The noise is the robust spread (1.4826 × MAD) of the residuals around the
    line; its standard error over ``x`` is widened by :func:`autocorrelation_factor`.
    Infinite when the readings lie exactly on the line.
    """
    n = len(y)
    mx = sum(x) / n
    sxx = sum((v - mx) ** 2 for v in x)
    if n < 4 or sxx <= 0:
        return 0.0
    res = [y[i] - slope * x[i] for i in range(n)]
    mid = median(res)
    scale = 1.4826 * median(abs(r - mid) for r in res)
    if scale <= 0:
        return math.inf if slope > 0 else 0.0
    se = scale / math.sqrt(sxx) * math.sqrt(autocorrelation_factor(res))
    return slope / se


@dataclass(frozen=True)
class Judgement:
    """A verdict with its evidence and, for people, the reason."""

    verdict: Verdict
    evidence: Evidence
    reason: str


def judge(
    x: Sequence[float], y: Sequence[float], limit: float, *, alpha: float = 0.01, min_samples: int = 8
) -> Judgement:
    """Judge one measure: ``x`` are iteration numbers, ``y`` the readings."""
    n = len(y)
    if n < min_samples:
        ev = Evidence(0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, n)
        return Judgement(Verdict.INCONCLUSIVE, ev, f"only {n} samples (need {min_samples})")
    slope, lo, hi = theil_sen(x, y)
    z, p = mann_kendall(y)
    half = n // 2
    late_slope, _, _ = theil_sen(x[half:], y[half:])
    q = max(1, n // 4)
    total = median(y[-q:]) - median(y[:q])
    ev = Evidence(slope, lo, hi, z, p, late_slope, total, n)

    if slope <= limit:
        return Judgement(Verdict.BOUNDED, ev, "growth below the limit")
    if lo <= 0 or p >= alpha or z <= 0:
        return Judgement(Verdict.BOUNDED, ev, "no significant upward trend")
    noisy = slope_z(x, y, slope) < NormalDist().inv_cdf(1 - alpha / 2)
    span = x[-1] - x[0]
    floor_rise = min(y[half:]) - min(y[:half])
    late_ok = late_slope > 0.5 * limit
    floor_ok = floor_rise > 0.25 * limit * span / 2
    if late_ok and floor_ok and not noisy:
        return Judgement(Verdict.UNBOUNDED, ev, "grows steadily, last half included")
    if not late_ok and late_slope <= 0.25 * limit and floor_rise <= limit * span / 2:
        return Judgement(Verdict.BOUNDED, ev, "grew, then levelled off (plateau)")
    if late_ok and floor_ok:
        why = "the trend is within the noise of the readings, which are autocorrelated"
    else:
        why = "the last half levels off" if not late_ok else "the floor comes back down (sawtooth?)"
    return Judgement(Verdict.INCONCLUSIVE, ev, f"grows overall but {why}")
