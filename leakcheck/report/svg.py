"""Small inline SVG charts of one measure over the iterations (no scripts, no fonts to fetch)."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence

from ..results import Finding, Series
from ..units import format_quantity

__all__ = ["chart", "sparkline"]

_ids = itertools.count(1)
_MAX_POINTS = 400


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most ``_MAX_POINTS`` points, keeping the first and last."""
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if len(pairs) <= _MAX_POINTS:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    step = (len(pairs) - 1) / (_MAX_POINTS - 1)
    picked = [pairs[round(i * step)] for i in range(_MAX_POINTS)]
    return [p[0] for p in picked], [p[1] for p in picked]


def _fit_intercept(xs: Sequence[float], ys: Sequence[float], slope: float) -> float:
    rest = sorted(y - slope * x for x, y in zip(xs, ys))
    return rest[len(rest) // 2]


def _axis_label(value: float, unit: str, span: float) -> str:
    """A tick label precise enough that neighbouring ticks differ, without the count unit."""
    if unit == "B":
        scale, name = 1.0, "B"
        for factor, label in ((1024.0**3, "GiB"), (1024.0**2, "MiB"), (1024.0, "KiB")):
            if max(abs(value), span) >= factor:
                scale, name = factor, label
                break
        scaled_span = span / scale
        digits = 0 if scaled_span >= 10 or name == "B" else (1 if scaled_span >= 1 else 2)
        return f"{value / scale:,.{digits}f} {name}"
    digits = 0 if span >= 10 else (1 if span >= 1 else 2)
    return f"{value:,.{digits}f}"


def _y_range(ys: Sequence[float], finding: Finding | None, x_span: float) -> tuple[float, float]:
    """Data range, widened so growth within the limit never fills the whole height."""
    lo, hi = min(ys), max(ys)
    if finding is not None and finding.limit is not None and math.isfinite(finding.limit):
        allowed = abs(finding.limit) * x_span
        if hi - lo < allowed:
            mid = (hi + lo) / 2
            lo, hi = mid - allowed / 2, mid + allowed / 2
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    return lo, hi


def _polyline(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def chart(
    series: Series,
    finding: Finding | None,
    *,
    width: int = 560,
    height: int = 180,
    title: str = "",
) -> str:
    """An SVG line chart with axes labels, the fitted slope and the limit drawn dashed."""
    xs, ys = _thin([float(i) for i in series.iterations], list(series.values))
    label = html.escape(title or series.probe)
    if len(xs) < 2:
        return (
            f'<svg class="chart" role="img" aria-label="{label}" width="{width}" height="40">'
            f'<text x="8" y="24" class="axis">not enough samples to plot</text></svg>'
        )
    left, right, top, bottom = 86, 12, 14, 26
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = xs[0], xs[-1]
    slope = finding.growth_per_iteration if finding is not None else 0.0
    slope = slope if slope is not None and math.isfinite(slope) else 0.0
    intercept = _fit_intercept(xs, ys, slope)
    fit_ys = [intercept + slope * x0, intercept + slope * x1]
    lo, hi = _y_range(ys + fit_ys, finding, x1 - x0)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    span_x = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / span_x * pw

    def py(y: float) -> float:
        return top + (hi - y) / (hi - lo) * ph

    cid = f"clip{next(_ids)}"
    leaking = finding is not None and finding.leaking
    parts = [
        (
            f'<svg class="chart" role="img" aria-label="{label}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        ),
        f"<title>{label}</title>",
        (
            f'<defs><clipPath id="{cid}"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/>'
            "</clipPath></defs>"
        ),
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = hi - (hi - lo) * frac
        y = top + ph * frac
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        text = html.escape(_axis_label(value, series.unit, hi - lo))
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{text}</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 8}" class="axis">iteration {int(x0)}</text>')
    parts.append(
        f'<text x="{left + pw}" y="{height - 8}" class="axis" text-anchor="end">{int(x1)}</text>'
    )
    if finding is not None and finding.limit is not None and math.isfinite(finding.limit):
        base = ys[0]
        limit_pts = [(px(x0), py(base)), (px(x1), py(base + finding.limit * (x1 - x0)))]
        parts.append(
            f'<polyline points="{_polyline(limit_pts)}" class="limit" clip-path="url(#{cid})">'
            f"<title>limit {html.escape(format_quantity(finding.limit, series.unit))}/iteration"
            "</title></polyline>"
        )
    points = [(px(x), py(y)) for x, y in zip(xs, ys)]
    parts.append(
        f'<polyline points="{_polyline(points)}" class="line{" bad" if leaking else ""}"/>'
    )
    fit_pts = [(px(x0), py(fit_ys[0])), (px(x1), py(fit_ys[1]))]
    parts.append(
        f'<polyline points="{_polyline(fit_pts)}" class="fit" clip-path="url(#{cid})">'
        f"<title>fitted slope {html.escape(format_quantity(slope, series.unit))}/iteration"
        "</title></polyline>"
    )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    series: Series, finding: Finding | None, *, width: int = 120, height: int = 28
) -> str:
    """A tiny line of the measure for the summary table."""
    xs, ys = _thin([float(i) for i in series.iterations], list(series.values))
    if len(xs) < 2:
        return ""
    lo, hi = _y_range(ys, finding, xs[-1] - xs[0])
    span_x = (xs[-1] - xs[0]) or 1.0
    pts = [
        (1 + (x - xs[0]) / span_x * (width - 2), 2 + (hi - y) / (hi - lo) * (height - 4))
        for x, y in zip(xs, ys)
    ]
    bad = " bad" if finding is not None and finding.leaking else ""
    label = html.escape(f"{series.probe} over {int(xs[-1] - xs[0])} iterations")
    return (
        f'<svg class="spark" role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline points="{_polyline(pts)}" class="line{bad}"/></svg>'
    )
