"""Judging a whole suite: time budgets, shards, exclusions and the session summary.

Nothing here knows pytest: the plugin asks these functions how many
iterations fit a test's budget, whether a node id belongs to this shard or
is excluded, and how to word the end-of-session summary. A session keeps
one :class:`TestSummary` per leak test (a few hundred bytes), not the check
results, so the harness's own memory stays flat over thousands of tests.
"""

from __future__ import annotations

import bisect
import fnmatch
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .config import Settings
from .errors import ConfigError
from .results import CheckResult, Finding, TestRecord
from .units import format_size

__all__ = [
    "DEFAULT_BUDGET",
    "MIN_VERDICT_CALLS",
    "MIN_VERDICT_ITERATIONS",
    "Budgeted",
    "FlamegraphQuota",
    "TestSummary",
    "excluded",
    "fit_budget",
    "in_shard",
    "iteration_of",
    "leak_headline",
    "not_repeatable_detail",
    "parse_budget",
    "parse_shard",
    "severity_of",
    "summarize",
    "summary_lines",
]

#: Seconds per test under ``--leak-all`` unless ``--leak-budget`` says otherwise.
DEFAULT_BUDGET = 10.0
#: Measured iterations the verdict needs at the least (the runner's MIN_SAMPLES at k=1).
MIN_VERDICT_ITERATIONS = 20
#: Warm-up calls the runner always makes (it times at least three).
MIN_WARMUP = 3
#: Calls a verdict needs in all: the fewest warm-up plus measured iterations.
MIN_VERDICT_CALLS = MIN_WARMUP + MIN_VERDICT_ITERATIONS
#: Share of the budget kept for sampling (a ``gc.collect`` per sample) and for handle settling.
_OVERHEAD = 0.15
#: Share of the budget the attribution window may take when growth is suspected.
_ATTRIBUTION_SHARE = 0.2
#: A traced call costs this many plain ones (tracemalloc with many frames, the worst case measured).
_TRACING_FACTOR = 10
#: Fewer traced iterations than this say too little about where memory goes.
_MIN_ATTRIBUTION = 5


@dataclass(frozen=True)
class Budgeted:
    """Settings scaled to a time budget, or why the test cannot be judged within it."""

    settings: Settings | None  #: ``None``: run once and report ``reason``
    reason: str = ""  #: "one call takes 3.2 s ..." when not judged; what was scaled down otherwise
    scaled: bool = False  #: iterations were cut to fit


def parse_budget(value: object, source: str) -> float:
    """Seconds per test, ``0`` for no budget; a clear :class:`ConfigError` otherwise."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError("budget", value, "expected seconds per test, e.g. 10 (0: no budget)", source) from None
    if not seconds >= 0 or math.isinf(seconds):
        raise ConfigError("budget", value, "expected seconds >= 0 (0: no budget)", source)
    return seconds


def fit_budget(settings: Settings, call_seconds: float, budget: float) -> Budgeted:
    """Scale ``settings`` so a check of a step taking ``call_seconds`` fits ``budget`` seconds.

    Never below :data:`MIN_VERDICT_CALLS` calls: a test that cannot afford
    them is not judged. The attribution window gets at most a fifth of the
    budget and is turned off when even a few traced calls would not fit.
    ``budget`` 0 means no budget: ``settings`` come back unchanged.
    """
    if budget <= 0:
        return Budgeted(settings)
    per_call = max(call_seconds, 1e-7)
    calls = budget * (1 - _OVERHEAD) / per_call
    if calls < MIN_VERDICT_CALLS:
        return Budgeted(
            None,
            f"one call takes {_seconds(call_seconds)}; a verdict needs {MIN_VERDICT_CALLS} calls, "
            f"more than the {_seconds(budget)} budget (raise --leak-budget to judge it)",
        )
    changes: dict[str, object] = {}
    notes = []
    if settings.attribution != "off":
        traced = int(calls * _ATTRIBUTION_SHARE / _TRACING_FACTOR)
        if traced < _MIN_ATTRIBUTION and calls * (1 - _ATTRIBUTION_SHARE) >= MIN_VERDICT_CALLS:
            changes["attribution"] = "off"
            notes.append("no attribution window")
        elif traced < settings.attribution_iterations:
            changes["attribution_iterations"] = max(traced, _MIN_ATTRIBUTION)
            notes.append(f"attribution over {changes['attribution_iterations']} iterations")
        if "attribution" not in changes:
            calls -= calls * _ATTRIBUTION_SHARE
    calls_left = int(calls)
    warmup = min(settings.warmup, max(MIN_WARMUP, calls_left // 10))
    measured = max(MIN_VERDICT_ITERATIONS, calls_left - max(warmup, MIN_WARMUP))
    if warmup < settings.warmup:
        changes["warmup"] = warmup
    if measured < settings.iterations:
        changes["iterations"] = measured
    if measured < settings.cap:
        changes["max_iterations"] = max(measured, changes.get("iterations", settings.iterations))  # type: ignore[call-overload]
    if settings.extend_time > budget:
        changes["extend_time"] = budget * (1 - _OVERHEAD)
    if settings.min_time > budget / 2:
        changes["min_time"] = budget / 2
    if not changes:
        return Budgeted(settings)
    scaled = "iterations" in changes or "max_iterations" in changes
    if "iterations" in changes:
        notes.insert(0, f"{measured} iterations to fit {_seconds(budget)}")
    return Budgeted(settings.replace(**changes), "; ".join(notes), scaled)


def severity_of(leaks: Iterable[Finding]) -> float:
    """How bad a leak is, to pick the worst: its fastest measure's growth over that measure's limit."""
    ratios = [
        f.growth_per_iteration / f.limit if f.limit > 0 else math.inf
        for f in leaks
        if math.isfinite(f.growth_per_iteration)
    ]
    return max(ratios, default=0.0)


class FlamegraphQuota:
    """Which leaking checks of this process keep a memray capture when only the worst few get flamegraphs.

    A check whose leak needs no memray window of its own (Python-heap growth,
    which tracemalloc attributes) runs one only to keep a capture for the
    report's flamegraphs of the ``limit`` worst leaking tests. A window costs
    ~0.4 s of CPU a check, and a suite can have hundreds of leaking tests: the
    capture is kept only while the check is among the ``limit`` worst seen so
    far here. Every test in a run's ``limit`` worst was among the worst its
    own process had seen when it ran, so each of them still has its capture.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._worst: list[float] = []  #: the ``limit`` highest severities so far, ascending

    def __call__(self, severity: float) -> str | None:
        """``None`` to keep a capture for a leak of ``severity`` (it is counted), else the note saying why not."""
        if len(self._worst) < self.limit:
            bisect.insort(self._worst, severity)
            return None
        if self.limit and severity > self._worst[0]:
            self._worst.pop(0)
            bisect.insort(self._worst, severity)
            return None
        return (
            f"no flamegraph: a Python-heap leak, attributed by tracemalloc, and not among the {self.limit} worst "
            "leaking tests so far (no memray window was run for it); rerun with --leak-flamegraphs=all for one"
        )


def parse_shard(value: str, source: str = "--leak-shard") -> tuple[int, int]:
    """``"2/4"`` as ``(2, 4)``: shard 2 of 4, counted from 1."""
    index, sep, count = str(value).partition("/")
    if sep and index.strip().isdigit() and count.strip().isdigit():
        i, n = int(index), int(count)
        if 1 <= i <= n:
            return i, n
    raise ConfigError("shard", value, "expected I/N with 1 <= I <= N, e.g. 2/4", source)


def in_shard(nodeid: str, index: int, count: int) -> bool:
    """Whether ``nodeid`` belongs to shard ``index`` of ``count``.

    A CRC-32 of the node id, not the collection order, so every job of a
    matrix agrees without talking to the others and a new test moves no other.
    """
    return zlib.crc32(nodeid.encode("utf-8")) % count == index - 1


def excluded(nodeid: str, patterns: Iterable[str]) -> bool:
    """Whether ``nodeid`` matches one of the fnmatch ``patterns`` (``tests/slow/*``, ``*::test_io*``)."""
    return any(fnmatch.fnmatchcase(nodeid, p) for p in patterns)


def iteration_of(phase: str, iteration: int | None, warmup: int) -> int:
    """The call a step failed on, counting the plain first call as 1."""
    if iteration is None:
        return 1
    if phase == "warm-up step":
        return 1 + iteration
    return 1 + max(warmup, MIN_WARMUP) + iteration


def not_repeatable_detail(call: int, exc: BaseException) -> str:
    """``passed on iteration 1, failed on iteration 5: AssertionError: assert 2 == 1``."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    if len(message) > 200:
        message = message[:197] + "..."
    return f"passed on iteration 1, failed on iteration {call}: {message}"


#: Units of the heap measures; every other unit counts handles or events.
_HEAP_UNITS = ("B", "blocks")


def leak_headline(result: CheckResult) -> str:
    """One line for the summary: the most telling leaking measure, the others named after it.

    A handle count (files, fds, threads) comes first: it is exact, and a leaked
    handle usually explains the memory it holds. Then the measures in the
    check's order, the Python heap first: it is the one attribution names
    lines for. ``files +2.00 files/iteration (also py_blocks, native_heap)``.
    """
    leaking = [f for f in result.findings if f.leaking]
    if not leaking:
        return f"{len(result.handles)} handles left behind" if result.handles else ""
    leaking.sort(key=lambda f: f.unit in _HEAP_UNITS)  # stable: the heap's own order, Python heap first
    lead = leaking[0]
    if lead.unit == "B":
        growth = format_size(lead.growth_per_iteration)
    else:
        growth = f"{lead.growth_per_iteration:.2f} {lead.unit}"
    also = f" (also {', '.join(f.probe for f in leaking[1:])})" if len(leaking) > 1 else ""
    return f"{lead.probe} +{growth}/iteration{also}"


@dataclass(frozen=True)
class TestSummary:
    """What the end-of-session summary needs of one leak test, and no more."""

    __test__ = False  # not a pytest test class, despite the name

    id: str
    outcome: str  #: a :class:`leakcheck.results.TestRecord` outcome
    detail: str = ""  #: one line: the leading finding, the failing iteration, the call time
    plain_seconds: float | None = None  #: the first, plain call
    leak_seconds: float | None = None  #: the leak run after it


def summarize(record: TestRecord) -> TestSummary:
    """The summary of one test's record: a leak's headline, or why it was not repeatable or not judged.

    The session's summary and ``leakcheck report --merge``'s are made by this one function.
    """
    detail = ""
    if record.outcome == "leaking" and record.result is not None:
        detail = leak_headline(record.result)
    elif record.outcome in ("not_repeatable", "not_judged") and record.message:
        detail = record.message.splitlines()[0]
    return TestSummary(record.id, record.outcome, detail, record.plain_seconds, record.leak_seconds)


_SECTIONS = (("leaking", "leaking"), ("not_repeatable", "not repeatable"), ("not_judged", "not judged"))


def summary_lines(tests: Sequence[TestSummary], *, limit: int = 50) -> list[str]:
    """The summary's lines: leaking, not repeatable and not judged tests, with their costs.

    At most ``limit`` tests per section; the rest are counted.
    """
    lines = []
    for outcome, title in _SECTIONS:
        chosen = [t for t in tests if t.outcome == outcome]
        if not chosen:
            continue
        lines.append(f"{title} ({len(chosen)}):")
        for t in chosen[:limit]:
            cost = _cost(t)
            detail = f" - {t.detail}" if t.detail else ""
            lines.append(f"  {t.id}{detail}{cost}")
        if len(chosen) > limit:
            lines.append(f"  ... and {len(chosen) - limit} more")
    return lines


def _cost(t: TestSummary) -> str:
    if t.plain_seconds is None:
        return ""
    if t.leak_seconds is None:
        return f" [plain {_seconds(t.plain_seconds)}]"
    return f" [leak run {_seconds(t.leak_seconds)}, plain {_seconds(t.plain_seconds)}]"


def _seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 0.1:
        return f"{value:.1f} s"
    if value >= 0.001:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"
