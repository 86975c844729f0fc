"""How long to measure and which spans a verdict must hold on: the runner's policy.

:mod:`leakcheck.verdict` judges one series. This module decides what series
to judge and when to stop: a long run is judged over an even subsample
(:func:`thinned`), growth must replicate on each of the last two spans of
``iterations`` on its own (:func:`judge_replicated`), and :func:`next_target`
says how many iterations the next pass should reach, or that it is time to stop.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import Settings
from .probes import Probe
from .results import Verdict
from .verdict import Judgement, judge

__all__ = ["EXTEND_RSS_LIMIT", "MAX_JUDGED", "QUICK_FOLLOW", "judge_replicated", "judge_span", "next_target", "thinned"]

#: Most samples one verdict looks at: Mann–Kendall is O(n²), and a longer run
#: is judged over an even subsample of its readings.
MAX_JUDGED = 400
#: Measuring past the usual spans stops once the process grew this much since
#: the baseline: growth that large is not in doubt, and the machine is shared.
EXTEND_RSS_LIMIT = 256 * 2**20
#: Seconds of step time within which growth already past twice ``fill_iterations``
#: is still followed, doubling, to the cap.
QUICK_FOLLOW = 2.0


def thinned(x: Sequence[int], y: Sequence[float]) -> tuple[list[float], list[float]]:
    """At most ``MAX_JUDGED`` evenly spread samples, the first and last included."""
    n = len(x)
    if n <= MAX_JUDGED:
        return [float(v) for v in x], list(y)
    idx = sorted({round(k * (n - 1) / (MAX_JUDGED - 1)) for k in range(MAX_JUDGED)})
    return [float(x[i]) for i in idx], [y[i] for i in idx]


def judge_span(x: Sequence[int], y: Sequence[float], first: int, last: int, limit: float, alpha: float) -> Judgement:
    """The verdict over the samples taken after iterations ``first`` to ``last``, on their own."""
    idx = [i for i, it in enumerate(x) if first <= it <= last]
    return judge(*thinned([x[i] for i in idx], [y[i] for i in idx]), limit, alpha=alpha)


def judge_replicated(
    x: Sequence[int], y: Sequence[float], limit: float, s: Settings, done: int, *, slow: bool = True
) -> Judgement:
    """Judge one series over all its samples and, once measured longer, span by span.

    An unbounded verdict must replicate on each of the last two spans of
    ``iterations`` on its own: fresh data the first verdict never saw. A
    one-off fill that spills past the warm-up (a ring or cache still filling,
    an lru_cache whose small-int keys give way to allocated ones) shows in one
    span and not the next; a leak shows in every span.
    """
    span = s.iterations
    jd = judge(*thinned(x, y), limit, alpha=s.alpha, long_run=done >= s.cap, slow=slow)
    # Stairs and slow growth carry their own test of the run's end: a span of
    # ``iterations`` may hold no stair at all.
    if jd.verdict is Verdict.UNBOUNDED and done > span and jd.rule == "slope":
        recent = judge_span(x, y, done - span, done, limit, s.alpha)
        previous = judge_span(x, y, done - 2 * span, done - span, limit, s.alpha)
        if recent.verdict is not Verdict.UNBOUNDED:
            verdict = Verdict.BOUNDED if recent.verdict is Verdict.BOUNDED else Verdict.INCONCLUSIVE
            reason = f"grew earlier, but not over the last {span} iterations ({recent.reason})"
            jd = Judgement(verdict, jd.evidence, reason)
        elif previous.verdict is not Verdict.UNBOUNDED:
            reason = f"grew over the last {span} iterations only; measuring longer"
            jd = Judgement(Verdict.INCONCLUSIVE, jd.evidence, reason)
    return jd


def next_target(
    probes: Sequence[Probe],
    judgements: Sequence[Judgement],
    done: int,
    elapsed: float,
    grown: int,
    s: Settings,
) -> int | None:
    """How many iterations to have measured after the next pass, or None to stop.

    The usual spans, one pass at a time: growth is confirmed over twice the
    first pass, an unclear verdict is measured up to five times it. Past
    them, heap growth may still be a fill that outlasts the spans (a ring of
    300 entries, a log buffer cleared every few thousand calls), so it is
    followed until the run is twice ``fill_iterations`` long; a small slope
    or stairs still unclear are followed to the cap. Either way measuring
    stops at ``extend_time`` seconds, and a pass never overshoots the time
    left. ``elapsed`` is the step's own time, sampling and judging left out,
    so a loaded machine does not decide how far growth is followed. ``min_time`` keeps every check
    measuring that long (the nightly
    profile). A handle leak is never followed further: counts are exact, and
    each pass would leak more descriptors or threads.
    """
    if done >= s.cap:
        return None
    verdicts = [(p.is_handle, j.verdict) for p, j in zip(probes, judgements)]
    unsure = any(v is Verdict.INCONCLUSIVE for _, v in verdicts)
    growing = any(v is Verdict.UNBOUNDED for _, v in verdicts)
    usual = 5 * s.iterations if unsure else 2 * s.iterations if growing else 0
    # A handle leak confirmed over two passes decides the test: another
    # measure still unsure does not change it, and each pass leaks more.
    if done >= 2 * s.iterations and any(handle and v is Verdict.UNBOUNDED for handle, v in verdicts):
        return None
    if done < usual:
        return min(s.cap, done + s.iterations)
    per_iteration = elapsed / max(done, 1)

    def doubled(budget: float) -> int:
        left = int((budget - elapsed) / per_iteration) if per_iteration > 0 else done
        return min(s.cap, 2 * done, done + max(s.iterations, left))

    if elapsed < s.min_time:
        return doubled(s.min_time)
    open_heap = [j for (handle, v), j in zip(verdicts, judgements) if not handle and v is not Verdict.BOUNDED]
    if not open_heap or elapsed >= s.extend_time or grown >= EXTEND_RSS_LIMIT:
        return None
    # Growth must outlast a fill of fill_iterations before it fails; once one
    # measure's has, the others' verdicts no longer change the outcome.
    follow = 2 * s.fill_iterations
    if any(j.verdict is Verdict.UNBOUNDED for j in open_heap):
        if done < follow:
            return min(doubled(s.extend_time), follow)
        # A fast step is followed on to the cap for QUICK_FOLLOW seconds at
        # little cost: a log buffer cleared every ~2,600 calls needs it.
        return doubled(QUICK_FOLLOW) if elapsed < QUICK_FOLLOW else None
    return doubled(s.extend_time)
