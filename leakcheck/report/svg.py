"""Small inline SVG charts (no scripts, no fonts to fetch).

:func:`chart` and :func:`sparkline` draw one measure over the iterations of one
check (the report); :func:`trend_chart` draws one measure's growth per iteration
over many runs (the trend page).
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..results import Finding, Series
from ..units import format_quantity

if TYPE_CHECKING:
    from .trend import TrendPoint

__all__ = ["chart", "sparkline", "trend_chart"]

_ids = itertools.count(1)
_MAX_POINTS = 400
#: A sparkline is 120 px wide: more points than this only make the index heavier.
_SPARK_POINTS = 60


def _thin(xs: Sequence[float], ys: Sequence[float], max_points: int = _MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points, keeping the first and last."""
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if len(pairs) <= max_points:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    step = (len(pairs) - 1) / (max_points - 1)
    picked = [pairs[round(i * step)] for i in range(max_points)]
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
        digits = 0 if name == "B" else _digits(span / scale)
        return f"{value / scale:,.{digits}f} {name}"
    return f"{value:,.{_digits(span)}f}"


def _digits(span: float) -> int:
    """Decimals that tell ticks half of ``span`` apart (a 3 KiB rise on 12 MiB needs 4)."""
    if span <= 0 or not math.isfinite(span):
        return 0
    return min(6, max(0, math.ceil(-math.log10(span / 2)) + 1)) if span / 2 < 1 else 0


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
    if min(ys) >= 0 > lo:  # a count or size never below zero: the axis starts at 0
        hi, lo = hi - lo, 0.0
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
        (f'<defs><clipPath id="{cid}"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath></defs>'),
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = hi - (hi - lo) * frac
        y = top + ph * frac
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        text = html.escape(_axis_label(value, series.unit, hi - lo))
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{text}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="axis">iteration {int(x0)}</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 8}" class="axis" text-anchor="end">{int(x1)}</text>')
    if finding is not None and finding.limit is not None and math.isfinite(finding.limit):
        base = ys[0]
        limit_pts = [(px(x0), py(base)), (px(x1), py(base + finding.limit * (x1 - x0)))]
        parts.append(
            f'<polyline points="{_polyline(limit_pts)}" class="limit" clip-path="url(#{cid})">'
            f"<title>limit {html.escape(format_quantity(finding.limit, series.unit))}/iteration"
            "</title></polyline>"
        )
    points = [(px(x), py(y)) for x, y in zip(xs, ys)]
    parts.append(f'<polyline points="{_polyline(points)}" class="line{" bad" if leaking else ""}"/>')
    fit_pts = [(px(x0), py(fit_ys[0])), (px(x1), py(fit_ys[1]))]
    parts.append(
        f'<polyline points="{_polyline(fit_pts)}" class="fit" clip-path="url(#{cid})">'
        f"<title>fitted slope {html.escape(format_quantity(slope, series.unit))}/iteration"
        "</title></polyline>"
    )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(series: Series, finding: Finding | None, *, width: int = 120, height: int = 28) -> str:
    """A tiny line of the measure for the summary table."""
    xs, ys = _thin([float(i) for i in series.iterations], list(series.values), _SPARK_POINTS)
    if len(xs) < 2:
        return ""
    lo, hi = _y_range(ys, finding, xs[-1] - xs[0])
    span_x = (xs[-1] - xs[0]) or 1.0
    pts = [(1 + (x - xs[0]) / span_x * (width - 2), 2 + (hi - y) / (hi - lo) * (height - 4)) for x, y in zip(xs, ys)]
    bad = " bad" if finding is not None and finding.leaking else ""
    label = html.escape(f"{series.probe} over {int(xs[-1] - xs[0])} iterations")
    return (
        f'<svg class="spark" role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline points="{_polyline(pts)}" class="line{bad}"/></svg>'
    )


def trend_chart(
    title: str,
    unit: str,
    points: Sequence[TrendPoint],
    labels: Sequence[str],
    chart_id: str,
    *,
    width: int = 520,
    height: int = 170,
) -> str:
    """An SVG chart of one measure's growth per iteration across runs, the limit dashed.

    ``labels`` name the runs (x axis, oldest first); ``points`` are the runs that have
    a reading, each at its run's index; leaking runs are drawn red.
    """
    left, right, top, bottom = 78, 12, 12, 34
    n = max(len(labels), 1)
    values = [p.growth for p in points] + [p.limit for p in points if math.isfinite(p.limit)]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    if hi - lo <= 0:
        hi = lo + 1.0
    hi += (hi - lo) * 0.08
    inner_w, inner_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (inner_w / 2 if n == 1 else inner_w * i / (n - 1))

    def y(v: float) -> float:
        return top + inner_h * (1 - (v - lo) / (hi - lo))

    esc = html.escape
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" id="{esc(chart_id)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(title)}: growth per iteration across runs">'
        ),
        f"<title>{esc(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" class="frame"/>',
        f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>',
    ]
    limits = sorted({p.limit for p in points if math.isfinite(p.limit) and p.limit > 0})
    for lim in limits[-1:]:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(lim):.1f}" y2="{y(lim):.1f}" '
            f'class="limit"><title>limit {esc(format_quantity(lim, unit))}/iteration</title></line>'
        )
    for v, anchor in ((hi, "top"), (lo, "bottom")):
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + (9 if anchor == "top" else -2):.1f}" class="axis" '
            f'text-anchor="end">{esc(format_quantity(v, unit))}</text>'
        )
    if labels:
        parts.append(f'<text x="{x(0):.1f}" y="{height - 8}" class="axis">{esc(labels[0])}</text>')
        if n > 1:
            parts.append(
                f'<text x="{x(n - 1):.1f}" y="{height - 8}" class="axis" text-anchor="end">{esc(labels[-1])}</text>'
            )
    if len(points) > 1:
        path = _polyline([(x(p.run), y(p.growth)) for p in points])
        parts.append(f'<polyline points="{path}" class="line"/>')
    for p in points:
        label = labels[p.run] if p.run < len(labels) else str(p.run)
        tip = f"{label}: {format_quantity(p.growth, unit)}/iteration ({p.verdict})"
        parts.append(
            f'<circle cx="{x(p.run):.1f}" cy="{y(p.growth):.1f}" r="3.5" '
            f'class="{"leak" if p.leaking else "ok"}"><title>{esc(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)
