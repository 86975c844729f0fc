"""Compare two runs: which leak tests regressed, improved, appeared or disappeared.

A measure *regresses* when its growth per iteration, or its peak over the run,
rose by more than ``threshold`` (relative) **and** by more than ``min_effect``
times the finding's limit (absolute, so 0.001 → 0.002 blocks/iteration is not
news), **and** the rise is statistically significant: a one-sided Mann–Whitney
U test on the per-iteration deltas of the two series says the current deltas
are larger, at level ``alpha``. A test regresses when a measure regresses, when
a measure (or the whole test) that was clean now leaks, or when it leaves more
handles behind than before. Noise alone moves neither the effect size past its
floor nor the test past its level, so it does not flag.

:func:`compare` works on :class:`~leakcheck.results.RunResults`;
:func:`add_compare_arguments` and :func:`run_compare_command` give the
``leakcheck compare`` subcommand.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Callable, Optional, TypeVar

from .errors import ResultsFileError
from .results import CheckResult, Finding, RunResults, Series, TestRecord, Verdict, load_results
from .units import format_quantity

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "Comparison",
    "MannWhitney",
    "MeasureDelta",
    "TestDelta",
    "add_compare_arguments",
    "compare",
    "delta_window",
    "format_markdown",
    "format_text",
    "load_run",
    "mann_whitney_u",
    "per_iteration_deltas",
    "run_compare_command",
    "series_peak",
]

K = TypeVar("K")

EXIT_OK = 0  #: no regression
EXIT_REGRESSION = 1  #: a regression (or, with ``--fail-on-missing``, a missing test)
EXIT_BAD_INPUT = 2  #: a file could not be read, or bad arguments

#: Fewer per-iteration deltas than this on either side and no significance is claimed.
MIN_SAMPLES = 8
#: How many windowed deltas the shorter series is cut into for the Mann–Whitney test.
TARGET_DELTAS = 30

# Status values of a TestDelta / MeasureDelta.
REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
NOT_COMPARED = "not compared"


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
    return max(1, min(_span(baseline), _span(current)) // target)


def series_peak(series: Series) -> float | None:
    """``max(values) - values[0]``: how far the measure rose above its first reading."""
    vals = [v for v in series.values if math.isfinite(v)]
    if not vals:
        return None
    return max(vals) - vals[0]


def _span(series: Series) -> int:
    if len(series.iterations) < 2:
        return 0
    return max(0, series.iterations[-1] - series.iterations[0])


@dataclass(frozen=True)
class MeasureDelta:
    """One measure (probe) of one test, in both runs."""

    probe: str
    title: str
    unit: str
    status: str  #: ``"regressed"``, ``"improved"``, ``"unchanged"`` or ``"not compared"``
    baseline_growth: float | None  #: growth per iteration in the baseline (``None``: absent)
    current_growth: float | None
    baseline_peak: float | None = None  #: ``max(values) - values[0]`` of the baseline series
    current_peak: float | None = None
    baseline_verdict: str = ""
    current_verdict: str = ""
    limit: float = 0.0  #: the current finding's limit per iteration
    #: one-sided Mann–Whitney p (current deltas larger), Holm-adjusted unless the
    #: comparison used ``correction="none"``; ``None`` when not tested
    p_value: float | None = None
    reason: str = ""  #: why it regressed/improved, or why it was not compared

    @property
    def relative_change(self) -> float | None:
        """``current / baseline - 1`` of the growth per iteration, when both are known and nonzero."""
        if self.baseline_growth is None or self.current_growth is None or self.baseline_growth == 0:
            return None
        return self.current_growth / self.baseline_growth - 1.0

    def shown_change(self) -> str:
        """The relative change for people, or ``""`` when the baseline is noise around zero."""
        rel = self.relative_change
        if rel is None or self.baseline_growth is None:
            return ""
        if self.limit > 0 and abs(self.baseline_growth) < 0.1 * self.limit:
            return ""  # -0.003 -> 0.002 blocks/iteration is not "-167%"
        return f"{rel:+.0%}"

    def describe(self) -> str:
        """One line for people."""
        base = (
            "-"
            if self.baseline_growth is None
            else format_quantity(self.baseline_growth, self.unit)
        )
        cur = (
            "-" if self.current_growth is None else format_quantity(self.current_growth, self.unit)
        )
        text = f"{self.title}: {base}/iter -> {cur}/iter"
        if self.shown_change():
            text += f" ({self.shown_change()})"
        if self.p_value is not None:
            text += f", p={self.p_value:.2g}"
        if self.reason:
            text += f"; {self.reason}"
        return text


@dataclass(frozen=True)
class TestDelta:
    """One test id, in both runs (or in one, for new leaking tests)."""

    __test__ = False  # not a pytest test class

    id: str
    status: str  #: ``"regressed"``, ``"improved"``, ``"unchanged"`` or ``"not compared"``
    baseline_outcome: str | None
    current_outcome: str | None
    baseline_leaking: bool = False
    current_leaking: bool = False
    measures: tuple[MeasureDelta, ...] = ()
    reasons: tuple[str, ...] = ()  #: why it regressed or improved, one phrase each

    @property
    def regressed(self) -> bool:
        return self.status == REGRESSED

    @property
    def improved(self) -> bool:
        return self.status == IMPROVED


@dataclass(frozen=True)
class Comparison:
    """The whole comparison of a current run with its baseline."""

    tests: tuple[TestDelta, ...]
    missing: tuple[str, ...] = ()  #: test ids in the baseline only
    added: tuple[str, ...] = ()  #: test ids in the current run only
    notes: tuple[str, ...] = ()  #: environment differences, duplicate ids
    threshold: float = 0.10
    alpha: float = 0.01
    min_effect: float = 0.25
    correction: str = "holm"
    baseline_created: str = ""
    current_created: str = ""

    @property
    def regressions(self) -> tuple[TestDelta, ...]:
        return tuple(t for t in self.tests if t.regressed)

    @property
    def improvements(self) -> tuple[TestDelta, ...]:
        return tuple(t for t in self.tests if t.improved)

    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)

    def exit_status(self, *, fail_on_missing: bool = False) -> int:
        """:data:`EXIT_REGRESSION` on a regression (or a missing test, if asked), else :data:`EXIT_OK`."""
        if self.has_regression or (fail_on_missing and self.missing):
            return EXIT_REGRESSION
        return EXIT_OK


def _is_leaking(record: TestRecord) -> bool:
    if record.result is not None:
        return record.result.leaking
    return record.outcome == "leaking"


def _significance(
    base: Series | None, cur: Series | None, bf: Finding, cf: Finding
) -> tuple[float | None, float | None, str]:
    """(p current larger, p current smaller, method note) from the series, else the slope intervals."""
    if base is not None and cur is not None:
        window = delta_window(base, cur)
        d_base, d_cur = per_iteration_deltas(base, window), per_iteration_deltas(cur, window)
        if len(d_base) >= MIN_SAMPLES and len(d_cur) >= MIN_SAMPLES:
            mw = mann_whitney_u(d_base, d_cur)
            return mw.p_greater, mw.p_less, ""
    be, ce = bf.evidence, cf.evidence
    if be is not None and ce is not None:
        # No usable series: the ~95% slope intervals must not overlap to count.
        if ce.slope_low > be.slope_high:
            return 0.0, 1.0, "slope intervals do not overlap (no series to test)"
        if ce.slope_high < be.slope_low:
            return 1.0, 0.0, "slope intervals do not overlap (no series to test)"
        return 1.0, 1.0, "slope intervals overlap (no series to test)"
    return None, None, "no samples to test significance"


_Sig = tuple[Optional[float], Optional[float], str]
_SigFn = Callable[[str, Optional[Series], Optional[Series], Finding, Finding], _Sig]


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


def _rose(base: float, cur: float, threshold: float, floor: float) -> bool:
    rise = cur - base
    return rise > 0 and rise > threshold * abs(base) and rise > floor


def _compare_measure(
    probe: str,
    bf: Finding | None,
    cf: Finding | None,
    bres: CheckResult,
    cres: CheckResult,
    threshold: float,
    alpha: float,
    min_effect: float,
    sig: _SigFn,
) -> MeasureDelta:
    ref = cf or bf
    assert ref is not None
    common = MeasureDelta(
        probe=probe,
        title=ref.title,
        unit=ref.unit,
        status=UNCHANGED,
        baseline_growth=None if bf is None else bf.growth_per_iteration,
        current_growth=None if cf is None else cf.growth_per_iteration,
        baseline_verdict="" if bf is None else bf.verdict.value,
        current_verdict="" if cf is None else cf.verdict.value,
        limit=ref.limit,
    )
    if bf is None or cf is None:
        where = "current run" if bf is None else "baseline"
        if cf is not None and cf.leaking:
            return replace(common, status=REGRESSED, reason="leaks; not measured in the baseline")
        return replace(common, status=NOT_COMPARED, reason=f"measured in the {where} only")
    unavailable = Verdict.UNAVAILABLE
    if bf.verdict is unavailable or cf.verdict is unavailable:
        return replace(common, status=NOT_COMPARED, reason="unavailable")
    bseries = next((s for s in bres.samples if s.probe == probe), None)
    cseries = next((s for s in cres.samples if s.probe == probe), None)
    bpeak = None if bseries is None else series_peak(bseries)
    cpeak = None if cseries is None else series_peak(cseries)
    common = replace(common, baseline_peak=bpeak, current_peak=cpeak)
    if cf.leaking and not bf.leaking:
        return replace(common, status=REGRESSED, reason=f"now leaks (was {bf.verdict.value})")
    if bf.leaking and not cf.leaking:
        return replace(common, status=IMPROVED, reason=f"no longer leaks (now {cf.verdict.value})")

    limit = max(cf.limit, 0.0)
    growth_floor = min_effect * limit
    peak_floor = min_effect * limit * (_span(cseries) if cseries is not None else cres.iterations)
    p_up, p_down, method = sig(probe, bseries, cseries, bf, cf)
    common = replace(common, p_value=p_up)

    bg, cg = bf.growth_per_iteration, cf.growth_per_iteration
    rises = []
    if _rose(bg, cg, threshold, growth_floor):
        rises.append("growth per iteration")
    if bpeak is not None and cpeak is not None and _rose(bpeak, cpeak, threshold, peak_floor):
        rises.append(
            f"peak ({format_quantity(bpeak, cf.unit)} -> {format_quantity(cpeak, cf.unit)})"
        )
    if rises:
        what = " and ".join(rises)
        if p_up is not None and p_up < alpha:
            evidence = method or f"Mann-Whitney p={p_up:.2g} < {alpha:g}"
            return replace(
                common, status=REGRESSED, reason=f"{what} rose beyond {threshold:.0%}; {evidence}"
            )
        if p_up is None:
            why = method
        else:
            why = method or f"not significant (Mann-Whitney p={p_up:.2g}, alpha {alpha:g})"
        return replace(common, status=UNCHANGED, reason=f"{what} rose; {why}")
    if _rose(cg, bg, threshold, growth_floor) and p_down is not None and p_down < alpha:
        return replace(common, status=IMPROVED, reason="growth per iteration fell")
    return replace(common, status=UNCHANGED)


def _compare_test(
    base: TestRecord,
    cur: TestRecord,
    threshold: float,
    alpha: float,
    min_effect: float,
    sig: _SigFn,
) -> TestDelta:
    bleak, cleak = _is_leaking(base), _is_leaking(cur)
    head = TestDelta(
        id=cur.id,
        status=UNCHANGED,
        baseline_outcome=base.outcome,
        current_outcome=cur.outcome,
        baseline_leaking=bleak,
        current_leaking=cleak,
    )
    if base.result is None or cur.result is None:
        if cleak and not bleak:
            return replace(head, status=REGRESSED, reasons=("was clean, now leaks",))
        which = "baseline" if base.result is None else "current run"
        outcome = base.outcome if base.result is None else cur.outcome
        reason = f"no check result in the {which} (outcome {outcome!r})"
        return replace(head, status=NOT_COMPARED, reasons=(reason,))
    bres, cres = base.result, cur.result
    bfind = {f.probe: f for f in bres.findings}
    cfind = {f.probe: f for f in cres.findings}
    probes = list(bfind) + [p for p in cfind if p not in bfind]
    measures = tuple(
        _compare_measure(
            p, bfind.get(p), cfind.get(p), bres, cres, threshold, alpha, min_effect, sig
        )
        for p in probes
    )
    regress: list[str] = []
    improve: list[str] = []
    if cleak and not bleak:
        regress.append("was clean, now leaks")
    elif bleak and not cleak:
        improve.append("was leaking, now clean")
    bh = Counter(h.kind for h in bres.handles)
    ch = Counter(h.kind for h in cres.handles)
    for kind in sorted(set(bh) | set(ch)):
        if ch[kind] > bh[kind]:
            regress.append(f"leaves {ch[kind]} {kind} handle(s) behind (baseline {bh[kind]})")
        elif ch[kind] < bh[kind]:
            improve.append(f"leaves {ch[kind]} {kind} handle(s) behind (baseline {bh[kind]})")
    regress.extend(f"{m.probe}: {m.reason}" for m in measures if m.status == REGRESSED)
    improve.extend(f"{m.probe}: {m.reason}" for m in measures if m.status == IMPROVED)
    if regress:
        return replace(head, status=REGRESSED, measures=measures, reasons=tuple(regress))
    if improve:
        return replace(head, status=IMPROVED, measures=measures, reasons=tuple(improve))
    return replace(head, status=UNCHANGED, measures=measures)


def _new_test(cur: TestRecord) -> TestDelta:
    leaking = _is_leaking(cur)
    measures: tuple[MeasureDelta, ...] = ()
    if cur.result is not None:
        measures = tuple(
            MeasureDelta(
                probe=f.probe,
                title=f.title,
                unit=f.unit,
                status=REGRESSED if f.leaking else NOT_COMPARED,
                baseline_growth=None,
                current_growth=f.growth_per_iteration,
                current_verdict=f.verdict.value,
                limit=f.limit,
                reason="leaks; no baseline" if f.leaking else "no baseline",
            )
            for f in cur.result.findings
        )
    return TestDelta(
        id=cur.id,
        status=REGRESSED if leaking else NOT_COMPARED,
        baseline_outcome=None,
        current_outcome=cur.outcome,
        current_leaking=leaking,
        measures=measures,
        reasons=("new test, leaks (no baseline)",) if leaking else ("new test (no baseline)",),
    )


def _index(run: RunResults, label: str, notes: list[str]) -> dict[str, TestRecord]:
    out: dict[str, TestRecord] = {}
    for t in run.tests:
        if t.id in out:
            notes.append(
                f"{label}: test id {t.id!r} appears more than once; the last record is used"
            )
        out[t.id] = t
    return out


def compare(
    baseline: RunResults,
    current: RunResults,
    *,
    threshold: float = 0.10,
    alpha: float = 0.01,
    min_effect: float = 0.25,
    correction: str = "holm",
) -> Comparison:
    """Compare ``current`` with ``baseline``; see the module docstring for the rules.

    ``threshold`` is the relative rise that counts (0.10 = 10%), ``alpha`` the
    one-sided significance level of the Mann–Whitney test, ``min_effect`` the
    absolute floor as a fraction of the finding's limit (per iteration for the
    growth, times the iterations measured for the peak). ``correction="holm"``
    adjusts the p-values of all the measures compared for multiplicity
    (Holm–Bonferroni), so ``alpha`` is the family-wise level of the whole
    comparison; ``"none"`` applies ``alpha`` to each measure on its own.
    """
    if correction not in ("holm", "none"):
        raise ValueError(f"correction={correction!r}: expected 'holm' or 'none'")
    if threshold < 0 or not 0 < alpha < 1 or min_effect < 0:
        raise ValueError(
            f"threshold={threshold!r} must be >= 0, alpha={alpha!r} in (0, 1), min_effect={min_effect!r} >= 0"
        )
    notes: list[str] = []
    bidx = _index(baseline, "baseline", notes)
    cidx = _index(current, "current", notes)
    for key in ("python", "implementation", "platform", "machine", "leakcheck"):
        b, c = baseline.environment.get(key), current.environment.get(key)
        if b and c and b != c:
            notes.append(f"environments differ: {key} {b} (baseline) vs {c} (current)")
    raw: dict[tuple[str, str], _Sig] = {}

    # Pass 1 gathers the raw p-values of every measure tested; pass 2 judges
    # with the Holm-adjusted ones, so ``alpha`` bounds the chance that noise
    # alone flags anything in the whole comparison, however many measures.
    for base, cur in [(bidx[tid], rec) for tid, rec in cidx.items() if tid in bidx]:

        def record(
            probe: str,
            bs: Series | None,
            cs: Series | None,
            bf: Finding,
            cf: Finding,
            tid: str = cur.id,
        ) -> _Sig:
            raw[(tid, probe)] = _significance(bs, cs, bf, cf)
            return raw[(tid, probe)]

        _compare_test(base, cur, threshold, alpha, min_effect, record)
    if correction == "holm":
        up = holm({k: v[0] for k, v in raw.items() if v[0] is not None})
        down = holm({k: v[1] for k, v in raw.items() if v[1] is not None})
        adjusted = {k: (up.get(k), down.get(k), v[2]) for k, v in raw.items()}
    else:
        adjusted = dict(raw)
    deltas: list[TestDelta] = []
    for tid, cur in cidx.items():
        prior = bidx.get(tid)
        if prior is None:
            deltas.append(_new_test(cur))
            continue

        def lookup(
            probe: str,
            bs: Series | None,
            cs: Series | None,
            bf: Finding,
            cf: Finding,
            tid: str = tid,
        ) -> _Sig:
            return adjusted[(tid, probe)]

        deltas.append(_compare_test(prior, cur, threshold, alpha, min_effect, lookup))
    return Comparison(
        tests=tuple(deltas),
        missing=tuple(t for t in bidx if t not in cidx),
        added=tuple(t for t in cidx if t not in bidx),
        notes=tuple(notes),
        threshold=threshold,
        alpha=alpha,
        min_effect=min_effect,
        correction=correction,
        baseline_created=baseline.created,
        current_created=current.created,
    )


# --------------------------------------------------------------------------- output


def _summary_counts(c: Comparison) -> str:
    unchanged = sum(1 for t in c.tests if t.status == UNCHANGED)
    parts = [
        f"{len(c.regressions)} regressed",
        f"{len(c.improvements)} improved",
        f"{unchanged} unchanged",
        f"{len(c.missing)} missing from the current run",
        f"{len(c.added)} new",
    ]
    return ", ".join(parts)


def _by_status(measures: Sequence[MeasureDelta]) -> list[MeasureDelta]:
    order = {REGRESSED: 0, IMPROVED: 1, UNCHANGED: 2, NOT_COMPARED: 3}
    return sorted(measures, key=lambda m: order.get(m.status, 9))


def _test_level_reasons(t: TestDelta) -> list[str]:
    """The reasons not already shown on a measure's own line."""
    probes = tuple(f"{m.probe}: " for m in t.measures)
    return [r for r in t.reasons if not r.startswith(probes)] if probes else list(t.reasons)


def format_text(
    c: Comparison, *, baseline_name: str = "baseline", current_name: str = "current"
) -> str:
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
    order = {REGRESSED: 0, IMPROVED: 1, NOT_COMPARED: 2, UNCHANGED: 3}
    for t in sorted(c.tests, key=lambda t: (order.get(t.status, 9), t.id)):
        lines.append("")
        lines.append(f"{t.status.upper():<12} {t.id}")
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


def format_markdown(
    c: Comparison, *, baseline_name: str = "baseline", current_name: str = "current"
) -> str:
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
    order = {REGRESSED: 0, IMPROVED: 1, NOT_COMPARED: 2, UNCHANGED: 3}
    for t in sorted(c.tests, key=lambda t: (order.get(t.status, 9), t.id)):
        status = {REGRESSED: ":x: regressed", IMPROVED: ":tada: improved"}.get(t.status, t.status)
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


# --------------------------------------------------------------------------- CLI


def load_run(path: str | os.PathLike[str]) -> RunResults:
    """:func:`~leakcheck.results.load_results`, with every failure as :class:`ResultsFileError`."""
    name = os.fspath(path)
    try:
        return load_results(path)
    except ResultsFileError:
        raise
    except UnicodeDecodeError:
        raise ResultsFileError(name, "not UTF-8 text (is it a results.json?)") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(name, f"malformed results: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ResultsFileError(name, "malformed results: nested too deeply") from None


def _fraction(text: str) -> float:
    """``10%``, ``0.1`` → 0.1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction such as 0.1 or 10%, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _alpha(text: str) -> float:
    value = _fraction(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text!r}")
    return value


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``leakcheck compare``'s arguments to ``parser`` (a subcommand parser)."""
    parser.add_argument("baseline", metavar="BASELINE.json", help="Results of the reference run")
    parser.add_argument("current", metavar="CURRENT.json", help="Results of the run to judge")
    parser.add_argument(
        "--threshold",
        type=_fraction,
        default=0.10,
        help="Relative rise of growth per iteration or peak that counts, e.g. 0.1 or 10%% (default 10%%)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.01,
        help="One-sided Mann-Whitney significance level on per-iteration deltas (default 0.01)",
    )
    parser.add_argument(
        "--min-effect",
        type=_fraction,
        default=0.25,
        help="Absolute floor on a rise, as a fraction of the finding's limit (default 0.25)",
    )
    parser.add_argument(
        "--correction",
        choices=("holm", "none"),
        default="holm",
        help="Multiple-comparison correction over all measures compared (default holm)",
    )
    parser.add_argument(
        "--fail-on-missing",
        action="store_true",
        default=False,
        help="Exit 1 when a baseline test is missing from the current run",
    )
    parser.add_argument(
        "--markdown", action="store_true", default=False, help="Print Markdown instead of text"
    )
    parser.add_argument(
        "--summary",
        metavar="FILE",
        default=None,
        help="Also append the Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    parser.set_defaults(func=run_compare_command)


def run_compare_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck compare``: 0 no regression, 1 regression, 2 unreadable input."""
    try:
        baseline = load_run(args.baseline)
        current = load_run(args.current)
    except ResultsFileError as exc:
        print(f"leakcheck compare: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    comparison = compare(
        baseline,
        current,
        threshold=args.threshold,
        alpha=args.alpha,
        min_effect=args.min_effect,
        correction=args.correction,
    )
    names = {"baseline_name": os.fspath(args.baseline), "current_name": os.fspath(args.current)}
    out = (
        format_markdown(comparison, **names) if args.markdown else format_text(comparison, **names)
    )
    sys.stdout.write(out)
    if args.summary:
        try:
            with open(args.summary, "a", encoding="utf-8") as fh:
                fh.write(format_markdown(comparison, **names))
        except OSError as exc:
            print(
                f"leakcheck compare: error: {args.summary}: cannot append: {exc.strerror}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    return comparison.exit_status(fail_on_missing=args.fail_on_missing)
