"""The statistics behind ``leakcheck compare``: Mann–Whitney U, Holm, per-iteration deltas.

Standard library only. :func:`per_iteration_deltas` cuts a series into
disjoint windows, :func:`delta_window` picks the window, :func:`mann_whitney_u`
tests the two samples of deltas, and :func:`holm` adjusts the p-values of a
whole comparison for multiplicity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..results import Series

__all__ = [
    "MIN_SAMPLES",
    "TARGET_DELTAS",
    "MannWhitney",
    "delta_window",
    "holm",
    "iteration_span",
    "mann_whitney_u",
    "per_iteration_deltas",
    "series_peak",
]

K = TypeVar("K")

#: Fewer per-iteration deltas than this on either side and no significance is claimed.
MIN_SAMPLES = 8
#: How many windowed deltas the shorter series is cut into for the Mann–Whitney test.
TARGET_DELTAS = 30


@dataclass(frozen=True)
class MannWhitney:
    """A Mann–Whitney U test of ``current`` against ``baseline`` (normal approximation).

    ``z`` is positive when the current values tend to be larger. ``p_greater``
    is the one-sided p-value for "current larger", ``p_less`` for "smaller".
    """

    u: float  #: U statistic of the current sample
    z: float
    p_greater: float
    p_less: float
    n_baseline: int
    n_current: int


def mann_whitney_u(baseline: Sequence[float], current: Sequence[float]) -> MannWhitney:
    """Mann–Whitney U with average ranks for ties, tie-corrected variance and continuity correction.

    Standard library only. With every value tied (or an empty side) there is
    no evidence either way: ``z = 0`` and both p-values are 1.
    """
    n1, n2 = len(baseline), len(current)
    if n1 == 0 or n2 == 0:
        return MannWhitney(0.0, 0.0, 1.0, 1.0, n1, n2)
    pooled = sorted([(v, 0) for v in baseline] + [(v, 1) for v in current])
    n = n1 + n2
    rank_sum_current = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        avg_rank = (i + j + 2) / 2.0  # ranks i+1 .. j+1
        size = j - i + 1
        tie_term += size**3 - size
        rank_sum_current += avg_rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 1)
        i = j + 1
    u = rank_sum_current - n2 * (n2 + 1) / 2.0
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return MannWhitney(u, 0.0, 1.0, 1.0, n1, n2)
    sd = math.sqrt(var)
    z_up = (u - mean - 0.5) / sd
    z_down = (u - mean + 0.5) / sd
    z = (u - mean) / sd
    return MannWhitney(
        u=u,
        z=z,
        p_greater=0.5 * math.erfc(z_up / math.sqrt(2.0)),
        p_less=0.5 * math.erfc(-z_down / math.sqrt(2.0)),
        n_baseline=n1,
        n_current=n2,
    )


def per_iteration_deltas(series: Series, window: int = 1) -> list[float]:
    """Growth per iteration over consecutive, non-overlapping windows of the readings.

    Each delta is ``(v[j] - v[i]) / (iteration[j] - iteration[i])`` where ``j``
    is the first reading at least ``window`` iterations after ``i``, and the
    next window starts at the reading after ``j``: no reading is shared, so the
    deltas are independent when the reading noise is (shared readings would
    correlate neighbouring deltas and make the rank test too timid). Wider
    windows average the reading noise out of each delta (noise of s.d. sigma
    per reading gives deltas of s.d. about ``1.4 * sigma / window``) while a
    difference in growth per iteration stays the same size.
    """
    out: list[float] = []
    its, vals = series.iterations, series.values
    count = min(len(its), len(vals))
    start = 0
    for k in range(1, count):
        if k <= start:
            continue
        step = its[k] - its[start]
        if step >= max(window, 1):
            if math.isfinite(vals[k]) and math.isfinite(vals[start]):
                out.append((vals[k] - vals[start]) / step)
            start = k + 1  # disjoint windows: no reading shared by two deltas
    return out


def delta_window(baseline: Series, current: Series, target: int = TARGET_DELTAS) -> int:
    """The window (in iterations) that gives the shorter series about ``target`` deltas."""
    return max(1, min(iteration_span(baseline), iteration_span(current)) // target)


def series_peak(series: Series) -> float | None:
    """``max(values) - values[0]``: how far the measure rose above its first reading."""
    vals = [v for v in series.values if math.isfinite(v)]
    if not vals:
        return None
    return max(vals) - vals[0]


def iteration_span(series: Series) -> int:
    """Iterations from the first reading to the last (0 with fewer than two readings)."""
    if len(series.iterations) < 2:
        return 0
    return max(0, series.iterations[-1] - series.iterations[0])


def holm(p_values: Mapping[K, float]) -> dict[K, float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control), same keys."""
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    m = len(ordered)
    out: dict[K, float] = {}
    running = 0.0
    for i, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        out[key] = running
    return out
