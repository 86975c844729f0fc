"""Trend across runs: each test's growth per iteration, per measure, night after night.

:func:`render_trend` makes one self-contained HTML page (inline CSS and SVG,
no scripts, nothing fetched) with a small chart per test and measure: the
growth per iteration of every run, ordered by the run's ``created`` time, the
measure's limit as a dashed line, leaking runs in red. Hover a point for its
run and value. The charts are :func:`leakcheck.report.svg.trend_chart`;
``leakcheck trend results-*.json -o trend.html`` (:mod:`leakcheck.cli.trend`)
writes the page.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..results import RunResults, Verdict
from .svg import trend_chart

__all__ = ["TrendPoint", "order_runs", "render_trend", "trend_points"]


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
                entry[2].append(TrendPoint(index, f.growth_per_iteration, f.limit, f.leaking, f.verdict.value))
    return out


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
                f"<figure>{trend_chart(measure, unit, points, labels, f'chart-{chart}')}"
                f"<figcaption>{esc(measure)} ({esc(unit)}/iteration)</figcaption></figure>"
            )
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
