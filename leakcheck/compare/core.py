"""The comparison itself: :func:`compare` and its frozen result types.

The rules are those of :mod:`leakcheck.compare`; the statistics come from
:mod:`leakcheck.compare.stats`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Optional

from .. import exit_codes
from ..results import CheckResult, Finding, RunResults, Series, TestRecord, Verdict
from ..units import format_quantity
from .stats import (
    MIN_SAMPLES,
    delta_window,
    holm,
    iteration_span,
    mann_whitney_u,
    per_iteration_deltas,
    series_peak,
)

__all__ = [
    "IMPROVED",
    "NOT_COMPARED",
    "REGRESSED",
    "UNCHANGED",
    "Comparison",
    "MeasureDelta",
    "TestDelta",
    "compare",
]

# Status values of a TestDelta / MeasureDelta.
REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
NOT_COMPARED = "not compared"


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
        base = "-" if self.baseline_growth is None else format_quantity(self.baseline_growth, self.unit)
        cur = "-" if self.current_growth is None else format_quantity(self.current_growth, self.unit)
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

    @property
    def known_leak(self) -> bool:
        """Leaking in both runs, and no worse: a known leak, shown apart from "unchanged", not a regression."""
        return self.baseline_leaking and self.current_leaking and self.status == UNCHANGED


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
    def known_leaks(self) -> tuple[TestDelta, ...]:
        """Tests that leak in the baseline and still leak, no worse (see :attr:`TestDelta.known_leak`)."""
        return tuple(t for t in self.tests if t.known_leak)

    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)

    def exit_status(self, *, fail_on_missing: bool = False) -> int:
        """:data:`~leakcheck.exit_codes.FOUND` on a regression (or a missing test, if asked), else ``OK``."""
        if self.has_regression or (fail_on_missing and self.missing):
            return exit_codes.FOUND
        return exit_codes.OK


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
    measured = iteration_span(cseries) if cseries is not None else cres.iterations
    peak_floor = min_effect * limit * measured
    p_up, p_down, method = sig(probe, bseries, cseries, bf, cf)
    common = replace(common, p_value=p_up)

    bg, cg = bf.growth_per_iteration, cf.growth_per_iteration
    rises = []
    if _rose(bg, cg, threshold, growth_floor):
        rises.append("growth per iteration")
    if bpeak is not None and cpeak is not None and _rose(bpeak, cpeak, threshold, peak_floor):
        rises.append(f"peak ({format_quantity(bpeak, cf.unit)} -> {format_quantity(cpeak, cf.unit)})")
    if rises:
        what = " and ".join(rises)
        if p_up is not None and p_up < alpha:
            evidence = method or f"Mann-Whitney p={p_up:.2g} < {alpha:g}"
            return replace(common, status=REGRESSED, reason=f"{what} rose beyond {threshold:.0%}; {evidence}")
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
        _compare_measure(p, bfind.get(p), cfind.get(p), bres, cres, threshold, alpha, min_effect, sig) for p in probes
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
            notes.append(f"{label}: test id {t.id!r} appears more than once; the last record is used")
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
    """Compare ``current`` with ``baseline``; see :mod:`leakcheck.compare` for the rules.

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
