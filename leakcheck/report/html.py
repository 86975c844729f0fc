"""The HTML pages: ``index.html`` (every leak test, failing first) and one page per test.

Plain HTML and CSS with inline SVG charts: no scripts, no fonts, no network,
so the report opens from ``file://`` and survives as a CI artifact. Every
name, path and message is escaped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from html import escape

from ..results import (
    TOOL_LABELS,
    CheckResult,
    LeakedHandle,
    Retention,
    RunResults,
    Series,
    TestRecord,
    Verdict,
    group_handles,
    handle_count,
    site_groups,
)
from ..units import format_quantity
from .svg import chart, sparkline

__all__ = ["order_tests", "render_index", "render_test_page", "safe_name"]

#: Above this many tests, passed tests get plain rows in the index.
COMPACT_OVER = 100
_OUTCOME_ORDER = {"leaking": 0, "error": 1, "not_repeatable": 1, "passed": 2, "not_judged": 3, "skipped": 3}
_HANDLE_TITLES = {
    "fd": "File descriptors",
    "thread": "Threads",
    "task": "asyncio tasks",
    "child": "Child processes",
    "file": "Files left behind",
}

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
  --bad:#cf222e; --badbg:#ffebe9; --ok:#1a7f37; --okbg:#dafbe1; --warn:#9a6700; --warnbg:#fff8c5;
  --info:#0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0; }
header { background: #24292f; color: #fff; padding: 14px 28px; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .sub { color: #c9d1d9; font-size: 12.5px; }
header a { color: #c9d1d9; }
main { padding: 20px 28px 40px; max-width: 1400px; }
h2 { font-size: 16px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 18px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px; min-width: 110px; }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: 12.5px; color: var(--muted); }
tr.leaking td:first-child { box-shadow: inset 3px 0 0 var(--bad); }
tr.error td:first-child { box-shadow: inset 3px 0 0 var(--warn); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  overflow-wrap: anywhere; }
/* With many measure columns the table would squeeze test ids to one letter a line; ids break at
   ::, / and [ (<wbr>), so a narrower column still reads, and every measure fits 1400 px. */
table.summary td:first-child { min-width: 14em; max-width: 24em; }
table.summary th, table.summary td { padding: 6px 6px; }
.wrap { overflow-x: auto; }
.top { color: var(--muted); font-size: 12px; margin-top: 2px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  line-height: 20px; white-space: nowrap; }
.b-leaking, .b-unbounded { background: var(--badbg); color: var(--bad); }
.b-passed, .b-bounded { background: var(--okbg); color: var(--ok); }
.b-error, .b-inconclusive { background: var(--warnbg); color: var(--warn); }
.b-skipped, .b-unavailable { background: var(--soft); color: var(--muted); }
.measure { white-space: nowrap; }
.measure .v { font-variant-numeric: tabular-nums; font-size: 12.5px; }
.measure .v.bad { color: var(--bad); font-weight: 600; }
svg.spark { display: block; margin-top: 2px; }
svg .line { fill: none; stroke: var(--info); stroke-width: 1.5; }
svg .line.bad { stroke: var(--bad); }
svg .fit { fill: none; stroke: #8250df; stroke-width: 1.2; stroke-dasharray: 5 3; }
svg .limit { fill: none; stroke: #6e7781; stroke-width: 1; stroke-dasharray: 2 3; }
svg .plot { fill: #fbfcfd; stroke: var(--line); }
svg .grid { stroke: #eaeef2; }
svg .axis { font-size: 11px; fill: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(580px, 1fr)); gap: 14px; }
.chartbox { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.chartbox h3 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }
.legend { font-size: 11.5px; color: var(--muted); }
.legend span { margin-right: 12px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
  overflow-x: auto; font-size: 12px; margin: 6px 0; }
.notes li { margin: 2px 0; }
.message { white-space: pre-wrap; }
details summary { cursor: pointer; color: var(--info); font-size: 12.5px; }
a { color: var(--info); text-decoration: none; } a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
.flame { display: inline-block; margin: 4px 0 8px; padding: 6px 12px; border: 1px solid var(--info);
  border-radius: 6px; font-weight: 600; }
"""


def safe_name(test_id: str) -> str:
    """A file name for ``test_id``: readable, filesystem-safe and unique (a short hash)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", test_id).strip("._-")[:60] or "test"
    return f"{slug}-{hashlib.sha1(test_id.encode('utf-8')).hexdigest()[:8]}"


def order_tests(tests: Sequence[TestRecord]) -> list[TestRecord]:
    """Failing tests first (leaking, then errors), then passed and skipped; by id within each."""
    return sorted(tests, key=lambda t: (_OUTCOME_ORDER.get(t.outcome, 1), t.id))


def _page(title: str, header_sub: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="sub">{header_sub}</div></header>'
        f"<main>{body}</main></body></html>\n"
    )


def _breakable(test_id: str) -> str:
    """``test_id`` escaped, with break opportunities after ``::``, ``/`` and before ``[``."""
    text = escape(test_id)
    text = text.replace("::", "::<wbr>").replace("/", "/<wbr>")
    return text.replace("[", "<wbr>[")


#: The line pytest-xdist puts before a worker's failure text: not part of the message.
_XDIST_HEADER = re.compile(r"^\[gw\d+\] \S+ -- Python .*$\n?", re.MULTILINE)


def _badge(text: str) -> str:
    return f'<span class="badge b-{escape(text)}">{escape(text)}</span>'


def _rate(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{format_quantity(value, unit)}/iter"


def _series_for(result: CheckResult, probe: str) -> Series | None:
    return next((s for s in result.samples if s.probe == probe), None)


def _probe_columns(tests: Sequence[TestRecord]) -> list[tuple[str, str]]:
    """(probe, title) of every measure any test has, in first-seen order, unavailable-only dropped."""
    seen: dict[str, str] = {}
    for t in tests:
        if t.result is None:
            continue
        for f in t.result.findings:
            if f.verdict is not Verdict.UNAVAILABLE and f.probe not in seen:
                seen[f.probe] = f.title
    return list(seen.items())


def _measure_cell(result: CheckResult | None, probe: str, *, compact: bool = False) -> str:
    if result is None:
        return '<td class="measure muted">–</td>'
    try:
        finding = result.finding(probe)
    except KeyError:
        return '<td class="measure muted">–</td>'
    if finding.verdict is Verdict.UNAVAILABLE:
        return f'<td class="measure muted" title="{escape(finding.note)}">unavailable</td>'
    cls = " bad" if finding.leaking else ""
    if compact:
        rate = escape(_rate(finding.growth_per_iteration, finding.unit))
        return f'<td class="measure"><span class="v">{rate}</span></td>'
    tip = escape(finding.describe(), quote=True)
    series = _series_for(result, probe)
    spark = sparkline(series, finding) if series is not None else ""
    return (
        f'<td class="measure" title="{tip}"><span class="v{cls}">'
        f"{escape(_rate(finding.growth_per_iteration, finding.unit))}</span>{spark}</td>"
    )


def render_index(results: RunResults, pages: Mapping[str, str]) -> str:
    """The summary page; ``pages`` maps a test id to its detail page (relative href)."""
    tests = order_tests(results.tests)
    counts = {k: sum(1 for t in tests if t.outcome == k) for k in _OUTCOME_ORDER}
    cards = [f'<div class="card"><div class="n">{len(tests)}</div><div class="l">leak tests</div></div>']
    for key in ("leaking", "error", "not_repeatable", "passed", "not_judged", "skipped"):
        if counts[key] or key in ("leaking", "passed"):
            cards.append(
                f'<div class="card"><div class="n">{counts[key]}</div><div class="l">{_badge(key)}</div></div>'
            )
    columns = _probe_columns(tests)
    head = "".join(f'<th>{escape(title)}<br><span class="muted">growth/iteration</span></th>' for _, title in columns)
    # A suite of thousands: clean tests get plain rows (no sparkline, no tooltip) so the page stays light.
    compact = len(tests) > COMPACT_OVER
    rows = []
    for t in tests:
        result = t.result
        plain = compact and t.outcome == "passed"
        top = ""
        if result is not None and result.attribution is not None and result.attribution.sites:
            site = result.attribution.sites[0]
            top = f'<div class="top">top site: {escape(site.where)}</div>'
        elif result is None and t.message:
            top = f'<div class="top">{escape(t.message.splitlines()[0][:200])}</div>'
        href = pages.get(t.id)
        name = _breakable(t.id)
        link = f'<a class="id" href="{escape(href)}">{name}</a>' if href else f'<span class="id">{name}</span>'
        cells = "".join(_measure_cell(result, probe, compact=plain) for probe, _ in columns)
        iters = f"{result.iterations} (+{result.warmup})" if result is not None else "–"
        handles = str(handle_count(result.handles)) if result is not None else "–"
        duration = f"{result.duration:.2f} s" if result is not None else "–"
        rows.append(
            f'<tr class="{escape(t.outcome)}"><td>{link}{top}</td><td>{_badge(t.outcome)}</td>'
            f'{cells}<td class="num">{handles}</td><td class="num">{iters}</td>'
            f'<td class="num">{duration}</td></tr>'
        )
    env = " · ".join(f"{escape(k)} {escape(str(v))}" for k, v in results.environment.items())
    sub = f"{escape(results.created) or 'results'}{' · ' + env if env else ''}"
    body = (
        f'<div class="cards">{"".join(cards)}</div>'
        '<h2>Leak tests</h2><div class="wrap"><table class="summary"><thead><tr><th>Test</th><th>Verdict</th>'
        f"{head}<th>Handles left</th><th>Iterations</th><th>Time</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="muted">Failing tests first. Each measure shows its robust growth per iteration '
        "over the measured iterations and a sparkline of its readings; red means it grows without "
        'bound beyond its limit. Raw data: <a href="results.json">results.json</a>.</p>'
        + (
            f'<p class="muted">{len(tests)} tests: passed ones are listed without sparklines; '
            "each one's page has its charts.</p>"
            if compact
            else ""
        )
    )
    return _page("leakcheck report", sub, body)


def _findings_table(result: CheckResult) -> str:
    rows = []
    for f in sorted(result.findings, key=lambda f: (not f.leaking, f.verdict is Verdict.UNAVAILABLE)):
        evidence = escape(f.evidence.describe(f.unit)) if f.evidence is not None else ""
        note = f'<br><span class="muted">{escape(f.note)}</span>' if f.note else ""
        unavailable = f.verdict is Verdict.UNAVAILABLE
        growth = "–" if unavailable else escape(_rate(f.growth_per_iteration, f.unit))
        badge = (
            '<span class="badge b-inconclusive">within limit</span>'
            if f.rising_within_limit
            else _badge(f.verdict.value)
        )
        rows.append(
            f'<tr><td>{escape(f.title)}<br><span class="muted id">{escape(f.probe)}</span></td>'
            f"<td>{badge}</td>"
            f'<td class="num">{growth}</td>'
            f'<td class="num">{escape(_rate(f.limit, f.unit))}</td><td>{evidence}{note}</td></tr>'
        )
    return (
        "<table><thead><tr><th>Measure</th><th>Verdict</th><th>Growth</th><th>Limit</th>"
        f"<th>Evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _charts(result: CheckResult) -> str:
    boxes = []
    findings = {f.probe: f for f in result.findings}
    ordered = sorted(result.samples, key=lambda s: not (findings.get(s.probe) and findings[s.probe].leaking))
    for series in ordered:
        finding = findings.get(series.probe)
        title = finding.title if finding is not None else series.probe
        if series.unit != "B":
            title = f"{title} ({series.unit})"
        boxes.append(
            f'<div class="chartbox"><h3>{escape(title)} {_badge(finding.verdict.value) if finding else ""}'
            f"</h3>{chart(series, finding, title=title)}"
            '<div class="legend"><span>— readings</span><span style="color:#8250df">- - fitted slope</span>'
            "<span>··· limit</span></div></div>"
        )
    return f'<div class="charts">{"".join(boxes)}</div>' if boxes else '<p class="muted">No samples.</p>'


def _handles(handles: Sequence[LeakedHandle]) -> str:
    """One entry per kind, creation site and pattern, with its count; the stack once per entry."""
    out = []
    groups = group_handles(handles)
    kinds = list(dict.fromkeys(h.kind for h in groups))
    for kind in kinds:
        items = []
        for h in groups:
            if h.kind != kind:
                continue
            stack = (
                f"<details><summary>created at</summary><pre>{escape(h.stack.rstrip())}</pre></details>"
                if h.stack
                else ""
            )
            count = f"<b>{h.count} \u00d7</b> " if h.count > 1 else ""
            origin = (
                f' <span class="muted">started at</span> <span class="id">{escape(h.origin)}</span>' if h.origin else ""
            )
            items.append(f'<li>{count}<span class="id">{escape(h.description)}</span>{origin}{stack}</li>')
        total = handle_count([h for h in groups if h.kind == kind])
        out.append(f"<h3>{escape(_HANDLE_TITLES.get(kind, kind))} ({total})</h3><ul>{''.join(items)}</ul>")
    return "".join(out)


def _unclosed(result: CheckResult) -> str:
    items = []
    for u in result.unclosed:
        tb = (
            f"<details><summary>allocated at</summary><pre>{escape(chr(10).join(u.traceback))}</pre></details>"
            if u.traceback
            else ""
        )
        items.append(
            f'<li><span class="id">{escape(u.describe())}</span> <span class="muted">{escape(u.source)}</span>{tb}</li>'
        )
    return f"<ul>{''.join(items)}</ul>"


def _retention(retention: Retention) -> str:
    parts = []
    if retention.types:
        items = "".join(f'<li><span class="id">{escape(t.describe())}</span></li>' for t in retention.types)
        parts.append(f"<h3>Object types growing in step with the iterations</h3><ul>{items}</ul>")
    if retention.chains:
        items = "".join(
            (
                f'<li><span class="id">{escape(c.describe())}</span> <span '
                f'class="muted">({escape(c.root_kind)})</span></li>'
            )
            for c in retention.chains
        )
        parts.append(f"<h3>Kept alive by</h3><ul>{items}</ul>")
    if retention.unheld:
        parts.append(f"<p><b>{escape(retention.unheld)}</b></p>")
    if retention.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in retention.notes) + "</ul>")
    parts.append(f'<p class="muted">Census and chains took {retention.seconds:.2f} s.</p>')
    return "".join(parts)


def _sites(result: CheckResult, flamegraph_href: str | None) -> str:
    attribution = result.attribution
    if attribution is None:
        return '<p class="muted">No attribution window ran for this test.</p>'
    parts = [f'<p class="muted">Traced window: {attribution.window_iterations} iterations.</p>']
    if flamegraph_href:
        parts.append(
            f'<a class="flame" href="{escape(flamegraph_href)}">Open the memray flamegraph of '
            "the allocations that leaked during the window</a>"
        )
    groups = site_groups(attribution.sites)
    if groups:
        rows = []
        for s, tools in groups:
            tb = [t for i, t in enumerate(s.traceback) if i == 0 or t != s.traceback[i - 1]]
            via = f'<br><span class="muted">via</span> <span class="id">{escape(s.via)}</span>' if s.via else ""
            seen = ", ".join(escape(TOOL_LABELS.get(t, t)) for t in tools)
            rows.append(
                f'<tr><td><span class="id">{escape(s.location)}</span>{via}'
                f"<details><summary>traceback</summary><pre>{escape(chr(10).join(tb))}</pre></details></td>"
                f"<td>{seen}</td>"
                f'<td class="num">{escape(format_quantity(s.bytes_per_iteration, "B"))}</td>'
                f'<td class="num">{s.blocks_per_iteration:.1f}</td>'
                f'<td class="num">{s.correlation:.2f}</td></tr>'
            )
        parts.append(
            "<h3>Growing allocation sites</h3><table><thead><tr><th>Location (innermost frame of your code)</th>"
            "<th>Seen by</th><th>Bytes/iteration</th><th>Blocks/iteration</th><th>Tracks iterations</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        parts.append("<p>No allocation site grew in step with the iterations.</p>")
    if attribution.retention is not None:
        parts.append(_retention(attribution.retention))
    if attribution.notes:
        notes = "".join(f"<li>{escape(n)}</li>" for n in attribution.notes)
        parts.append(f'<ul class="notes">{notes}</ul>')
    return "".join(parts)


def render_test_page(record: TestRecord, flamegraph_href: str | None) -> str:
    """The detail page of one test (it lives in ``tests/``, so links go up one level)."""
    result = record.result
    body = [f'<p><a href="../index.html">← all leak tests</a></p><p>{_badge(record.outcome)}']
    if record.worker:
        body.append(f' <span class="muted">worker {escape(record.worker)}</span>')
    body.append("</p>")
    if record.message:
        message = _XDIST_HEADER.sub("", record.message)
        body.append(f'<pre class="message">{escape(message)}</pre>')
    if result is not None:
        body.append(
            f'<p class="muted">{result.iterations} measured iterations after {result.warmup} '
            f"warm-up, {result.duration:.2f} s.</p>"
        )
        body.append("<h2>Measures</h2>" + _findings_table(result))
        body.append("<h2>Over the iterations</h2>" + _charts(result))
        if result.handles:
            body.append("<h2>Left behind</h2>" + _handles(result.handles))
        if result.unclosed:
            body.append("<h2>Closed by the garbage collector, not by the code</h2>" + _unclosed(result))
        body.append("<h2>Where it grows</h2>" + _sites(result, flamegraph_href))
        if result.notes:
            body.append(
                '<h2>Notes</h2><ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in result.notes) + "</ul>"
            )
    if record.extra:
        extra = json.dumps(dict(record.extra), indent=1, default=str)
        body.append(f"<h2>More</h2><pre>{escape(extra)}</pre>")
    return _page(record.id, "leakcheck · test detail", "".join(body))
