"""Does a site's growth track the iteration count? Small, dependency-free statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["MIN_BYTES_PER_ITERATION", "MIN_TRACKING", "count_regularity", "slope", "tracking"]

#: A site growing by less than this per iteration is noise, not a leak worth naming.
MIN_BYTES_PER_ITERATION = 4.0
#: A site whose growth tracks the iterations less than this (0..1) is a one-off or a plateau.
MIN_TRACKING = 0.5


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 when undefined)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(sxx * syy)


def tracking(xs: Sequence[float], ys: Sequence[float]) -> float:
    """0..1: how closely ``ys`` grows in step with ``xs``.

    The Pearson correlation (negative counts as 0) times the share of
    consecutive intervals in which the value rose. A leak of k allocations per
    iteration rises in every interval and scores 1; a one-off allocation is a
    single step (high correlation, but it rose in one interval only); a
    plateau or a sawtooth scores near 0.
    """
    if len(xs) < 3:
        return 0.0
    r = max(0.0, _pearson(xs, ys))
    rises = sum(1 for a, b in zip(ys, ys[1:]) if b > a)
    return r * rises / (len(ys) - 1)


def count_regularity(allocations: int, iterations: int) -> float:
    """0..1: how close ``allocations`` is to a whole multiple of ``iterations``.

    Used where only the end state is known (a memray leak capture): a site that
    leaks k allocations per iteration leaves exactly ``k * iterations``; a
    one-off leaves a handful, whatever the iteration count.
    """
    if iterations <= 0 or allocations <= 0:
        return 0.0
    per = allocations / iterations
    if per < 1:
        return per
    k = round(per)
    return max(0.0, 1.0 - abs(allocations - k * iterations) / allocations)
