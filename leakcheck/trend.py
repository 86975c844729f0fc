"""Trend across runs: each test's growth per iteration, per measure, night after night.

``leakcheck trend results-*.json -o trend.html`` renders one self-contained
HTML page (inline CSS and SVG, no scripts, nothing fetched) with a small
chart per test and measure: the growth per iteration of every run, ordered by
the run's ``created`` time, the measure's limit as a dashed line, leaking runs
in red. Hover a point for its run and value.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .compare import EXIT_BAD_INPUT, EXIT_OK, load_run
from .errors import ResultsFileError
from .results import RunResults, Verdict, atomic_write_text
from .units import format_quantity

__all__ = [
    "TrendPoint",
    "add_trend_arguments",
    "order_runs",
    "render_trend",
    "run_trend_command",
    "trend_points",
]

WIDTH, HEIGHT = 520, 170
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 78, 12, 12, 34


@dataclass(frozen=True)
class TrendPoint:
    """One run's finding for one test and measure."""

    run: int  #: index of the run in created order
    growth: float  #: growth per iteration
    limit: float
    leaking: bool
    verdict: str


def _created_key(run: RunResults) -> _dt.datetime | None:
    text = run.created.strip()
    if not text:
        return None
    try:
        stamp = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=_dt.timezone.utc)


def order_runs(runs: Sequence[tuple[str, RunResults]]) -> list[tuple[str, RunResults]]:
    """Runs by ``created``, oldest first; runs without a usable date keep their order, last."""
    keyed = [(_created_key(r), i, name, r) for i, (name, r) in enumerate(runs)]
    dated = sorted((k for k in keyed if k[0] is not None), key=lambda k: (k[0], k[1]))
    undated = [k for k in keyed if k[0] is None]
    return [(name, r) for _, _, name, r in dated + undated]


def trend_points(
    runs: Sequence[RunResults],
) -> dict[str, dict[str, tuple[str, str, list[TrendPoint]]]]:
    """``{test id: {probe: (title, unit, points)}}`` in first-seen order; unavailable readings skipped."""
    out: dict[str, dict[str, tuple[str, str, list[TrendPoint]]]] = {}
    for index, run in enumerate(runs):
        for test in run.tests:
            probes = out.setdefault(test.id, {})
            if test.result is None:
                continue
            for f in test.result.findings:
                if f.verdict is Verdict.UNAVAILABLE or not math.isfinite(f.growth_per_iteration):
                    continue
                entry = probes.setdefault(f.probe, (f.title, f.unit, []))
                entry[2].append(
                    TrendPoint(index, f.growth_per_iteration, f.limit, f.leaking, f.verdict.value)
                )
    return out


def _svg(
    title: str, unit: str, points: Sequence[TrendPoint], labels: Sequence[str], chart_id: str
) -> str:
    n = max(len(labels), 1)
    values = [p.growth for p in points] + [p.limit for p in points if math.isfinite(p.limit)]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    if hi - lo <= 0:
        hi = lo + 1.0
    hi += (hi - lo) * 0.08
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (inner_w / 2 if n == 1 else inner_w * i / (n - 1))

    def y(v: float) -> float:
        return PAD_TOP + inner_h * (1 - (v - lo) / (hi - lo))

    esc = html.escape
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" id="{esc(chart_id)}" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{esc(title)}: growth per iteration across runs">'
        ),
        f"<title>{esc(title)}</title>",
        f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{inner_w}" height="{inner_h}" class="frame"/>',
        f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>',
    ]
    limits = sorted({p.limit for p in points if math.isfinite(p.limit) and p.limit > 0})
    for lim in limits[-1:]:
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(lim):.1f}" y2="{y(lim):.1f}" '
            f'class="limit"><title>limit {esc(format_quantity(lim, unit))}/iteration</title></line>'
        )
    for v, anchor in ((hi, "top"), (lo, "bottom")):
        parts.append(
            f'<text x="{PAD_LEFT - 4}" y="{y(v) + (9 if anchor == "top" else -2):.1f}" class="axis" '
            f'text-anchor="end">{esc(format_quantity(v, unit))}</text>'
        )
    if labels:
        parts.append(f'<text x="{x(0):.1f}" y="{HEIGHT - 8}" class="axis">{esc(labels[0])}</text>')
        if n > 1:
            parts.append(
                f'<text x="{x(n - 1):.1f}" y="{HEIGHT - 8}" class="axis" text-anchor="end">'
                f"{esc(labels[-1])}</text>"
            )
    if len(points) > 1:
        path = " ".join(f"{x(p.run):.1f},{y(p.growth):.1f}" for p in points)
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


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1150px}
h1{font-size:1.4em} h2{font-size:1.05em;font-family:ui-monospace,monospace;word-break:break-all}
table{border-collapse:collapse;margin-bottom:1.5em} td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}
figure{display:inline-block;margin:0 1em 1em 0} figcaption{font-size:.9em;color:#555}
.frame{fill:#fafafa;stroke:#ccc} .zero{stroke:#bbb} .limit{stroke:#d33;stroke-dasharray:4 3}
.line{fill:none;stroke:#36c;stroke-width:1.5} .ok{fill:#36c} .leak{fill:#d22}
.axis{font-size:10px;fill:#555} .muted{color:#777}
"""


def render_trend(runs: Sequence[tuple[str, RunResults]], *, title: str = "leakcheck trend") -> str:
    """The HTML page for ``runs`` (``(name, results)`` pairs, in any order)."""
    ordered = order_runs(runs)
    labels = [r.created[:10] or os.path.basename(name) for name, r in ordered]
    data = trend_points([r for _, r in ordered])
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        (
            f'<p class="muted">Growth per iteration of each measure, {len(ordered)} runs, oldest first. '
            "Dashed red: the limit; red points: the run found a leak.</p>"
        ),
        "<table><tr><th>#</th><th>run</th><th>created</th><th>python</th><th>platform</th></tr>",
    ]
    for i, (name, r) in enumerate(ordered):
        env = r.environment
        out.append(
            f"<tr><td>{i + 1}</td><td>{esc(name)}</td><td>{esc(r.created or '?')}</td>"
            f"<td>{esc(str(env.get('python', '')))}</td><td>{esc(str(env.get('platform', '')))}</td></tr>"
        )
    out.append("</table>")
    chart = 0
    for test_id, probes in data.items():
        out.append(f"<section><h2>{esc(test_id)}</h2>")
        if not probes:
            out.append('<p class="muted">No check results in these runs.</p>')
        for measure, unit, points in probes.values():
            chart += 1
            out.append(
                f"<figure>{_svg(measure, unit, points, labels, f'chart-{chart}')}"
                f"<figcaption>{esc(measure)} ({esc(unit)}/iteration)</figcaption></figure>"
            )
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def add_trend_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``leakcheck trend``'s arguments to ``parser`` (a subcommand parser)."""
    parser.add_argument(
        "results", nargs="+", metavar="RESULTS.json", help="Results of the runs to chart"
    )
    parser.add_argument(
        "-o", "--output", default="trend.html", help="HTML file to write (default trend.html)"
    )
    parser.add_argument("--title", default="leakcheck trend", help="Page title")
    parser.set_defaults(func=run_trend_command)


def run_trend_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck trend``: 0 written, 2 an unreadable input or output."""
    try:
        runs = [(os.fspath(p), load_run(p)) for p in args.results]
    except ResultsFileError as exc:
        print(f"leakcheck trend: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        atomic_write_text(args.output, render_trend(runs, title=args.title))
    except OSError as exc:
        print(
            f"leakcheck trend: error: {args.output}: cannot write: {exc.strerror}", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    print(f"wrote {args.output} ({len(runs)} runs)")
    return EXIT_OK
