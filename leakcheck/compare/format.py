"""The reports of ``leakcheck compare``: plain text and Markdown."""

from __future__ import annotations

from collections.abc import Sequence

from ..units import format_quantity
from .core import IMPROVED, NOT_COMPARED, REGRESSED, UNCHANGED, Comparison, MeasureDelta, TestDelta

__all__ = ["format_markdown", "format_text"]


def _summary_counts(c: Comparison) -> str:
    known = len(c.known_leaks)
    unchanged = sum(1 for t in c.tests if t.status == UNCHANGED) - known
    parts = [
        f"{len(c.regressions)} regressed",
        f"{len(c.improvements)} improved",
        f"{known} still leaking (known)",
        f"{unchanged} unchanged",
        f"{len(c.missing)} missing from the current run",
        f"{len(c.added)} new",
    ]
    return ", ".join(parts)


def _by_status(measures: Sequence[MeasureDelta]) -> list[MeasureDelta]:
    order = {REGRESSED: 0, IMPROVED: 1, UNCHANGED: 2, NOT_COMPARED: 3}
    return sorted(measures, key=lambda m: order.get(m.status, 9))


#: How a test that leaks in both runs, no worse, is labelled: not "unchanged", which would hide it.
KNOWN_LEAK = "still leaking (known)"


def _label(t: TestDelta) -> str:
    return KNOWN_LEAK if t.known_leak else t.status


def _order(t: TestDelta) -> tuple[int, str]:
    order = {REGRESSED: 0, IMPROVED: 1, KNOWN_LEAK: 2, NOT_COMPARED: 3, UNCHANGED: 4}
    return order.get(_label(t), 9), t.id


def _test_level_reasons(t: TestDelta) -> list[str]:
    """The reasons not already shown on a measure's own line."""
    probes = tuple(f"{m.probe}: " for m in t.measures)
    return [r for r in t.reasons if not r.startswith(probes)] if probes else list(t.reasons)


def format_text(c: Comparison, *, baseline_name: str = "baseline", current_name: str = "current") -> str:
    """The plain-text report: per test and measure, baseline and current growth, flags."""
    lines = [
        f"baseline: {baseline_name} ({c.baseline_created or 'no date'})",
        f"current:  {current_name} ({c.current_created or 'no date'})",
        (
            f"rules: rise > {c.threshold:.0%} and > {c.min_effect:g} x limit, "
            f"Mann-Whitney one-sided p < {c.alpha:g}"
            + (" (Holm-adjusted over all measures)" if c.correction == "holm" else "")
        ),
    ]
    lines.extend(f"note: {n}" for n in c.notes)
    for t in sorted(c.tests, key=_order):
        lines.append("")
        label = "STILL LEAKING (known)" if t.known_leak else f"{t.status.upper():<12}"
        lines.append(f"{label} {t.id}")
        lines.extend(f"    - {r}" for r in _test_level_reasons(t))
        for m in _by_status(t.measures):
            flag = {REGRESSED: "REGRESSION ", IMPROVED: "improved   "}.get(m.status, "           ")
            lines.append(f"    {flag}{m.describe()}")
    if c.missing:
        lines.append("")
        lines.append("in the baseline only (missing from the current run):")
        lines.extend(f"    {tid}" for tid in c.missing)
    if c.added:
        lines.append("")
        lines.append("in the current run only (new):")
        lines.extend(f"    {tid}" for tid in c.added)
    lines.append("")
    lines.append(("REGRESSION: " if c.has_regression else "OK: ") + _summary_counts(c))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Escape text for a Markdown table cell."""
    out = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    for ch in "*_[]<>":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def format_markdown(c: Comparison, *, baseline_name: str = "baseline", current_name: str = "current") -> str:
    """A Markdown summary for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""
    icon = ":x:" if c.has_regression else ":white_check_mark:"
    lines = [
        f"### {icon} Leak comparison: {_summary_counts(c)}",
        "",
        (
            f"Baseline `{_md(baseline_name)}` ({_md(c.baseline_created or 'no date')}) → "
            f"current `{_md(current_name)}` ({_md(c.current_created or 'no date')}). "
            f"A measure regresses when it rose more than {c.threshold:.0%} (and more than "
            f"{c.min_effect:g} × its limit) with a one-sided Mann–Whitney p < {c.alpha:g}"
            + (" (Holm-adjusted over all measures)." if c.correction == "holm" else ".")
        ),
        "",
    ]
    lines.extend(f"> {_md(n)}" for n in c.notes)
    if c.notes:
        lines.append("")
    lines.append("| Status | Test | Measure | Baseline /iter | Current /iter | Change | p | Why |")
    lines.append("|---|---|---|---:|---:|---:|---:|---|")
    for t in sorted(c.tests, key=_order):
        status = {REGRESSED: ":x: regressed", IMPROVED: ":tada: improved"}.get(t.status, t.status)
        if t.known_leak:
            status = ":warning: " + KNOWN_LEAK
        if not t.measures:
            why = "; ".join(t.reasons)
            lines.append(f"| {status} | {_md(t.id)} | | | | | | {_md(why)} |")
            continue
        for i, m in enumerate(_by_status(t.measures)):
            first = i == 0
            base = "–" if m.baseline_growth is None else format_quantity(m.baseline_growth, m.unit)
            cur = "–" if m.current_growth is None else format_quantity(m.current_growth, m.unit)
            change = m.shown_change()
            p = "" if m.p_value is None else f"{m.p_value:.2g}"
            why = m.reason
            if first:
                why = "; ".join(_test_level_reasons(t) + ([m.reason] if m.reason else []))
            mark = "**" if m.status == REGRESSED else ""
            lines.append(
                f"| {status if first else ''} | {_md(t.id) if first else ''} | {mark}{_md(m.title)}{mark} "
                f"| {_md(base)} | {_md(cur)} | {change} | {p} | {_md(why)} |"
            )
    if c.missing:
        lines += ["", "**In the baseline only (missing from the current run):**", ""]
        lines.extend(f"- `{tid.replace('`', '')}`" for tid in c.missing)
    if c.added:
        lines += ["", "**New in the current run:**", ""]
        lines.extend(f"- `{tid.replace('`', '')}`" for tid in c.added)
    return "\n".join(lines) + "\n"
