"""Typed, frozen result objects and their JSON form (``results.json``).

A :class:`CheckResult` is what one leak check returns; a :class:`RunResults`
is what a whole run (a pytest session, a CLI run) writes as ``results.json``.
Both convert to plain dicts with ``to_dict()`` and back with ``from_dict()``;
the JSON schema lives in ``leakcheck/data/results.schema.json``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import ResultsFileError
from .groups import TOOL_LABELS, describe_handle_groups, group_handles, handle_count, site_groups
from .plain import number, seconds_or_none, to_plain
from .units import format_quantity

__all__ = [
    "HANDLE_PROBES",
    "SCHEMA_VERSION",
    "TOOL_LABELS",
    "AllocationSite",
    "Attribution",
    "CheckResult",
    "Evidence",
    "Finding",
    "GrowingType",
    "LeakedHandle",
    "ReferrerChain",
    "Retention",
    "RunResults",
    "Series",
    "TestRecord",
    "UnclosedResource",
    "Verdict",
    "describe_handle_groups",
    "group_handles",
    "handle_count",
    "load_results",
    "site_groups",
]

#: Bumped whenever a field changes meaning or disappears; adding fields keeps it.
SCHEMA_VERSION = 1
#: An inconclusive measure that grew this many times its limit over the run is shown on its own line.
UNCLEAR_RATIO = 3.0
#: Probes that count handles: their leak is reported with the handles left, ahead of any site.
HANDLE_PROBES = frozenset({"fds", "threads", "os_threads", "tasks", "children", "files"})


class Verdict(str, enum.Enum):
    """What the statistics say about one measure."""

    UNBOUNDED = "unbounded"  #: grows with the iteration count: a leak
    BOUNDED = "bounded"  #: flat, noisy, or a plateau: no leak
    INCONCLUSIVE = "inconclusive"  #: the cap on iterations was reached without a clear answer
    UNAVAILABLE = "unavailable"  #: the measure cannot be read here (see the finding's note)


@dataclass(frozen=True)
class Evidence:
    """The statistics behind a verdict, over the measured (post-warm-up) samples."""

    slope: float  #: Theil–Sen growth per iteration, in the measure's unit
    slope_low: float  #: lower end of the slope's ~95% confidence interval
    slope_high: float  #: upper end of that interval
    trend_z: float  #: Mann–Kendall z statistic (positive: rising)
    trend_p: float  #: Mann–Kendall two-sided p-value
    late_slope: float  #: Theil–Sen slope over the last half only (plateau check)
    total_growth: float  #: median of the last samples minus median of the first
    samples: int  #: how many samples the statistics used

    def describe(self, unit: str) -> str:
        """One line for people: slope with its interval, trend test and late slope."""
        return (
            f"slope {format_quantity(self.slope, unit)}/iter "
            f"[{format_quantity(self.slope_low, unit)} .. {format_quantity(self.slope_high, unit)}], "
            f"Mann-Kendall z={self.trend_z:.1f} p={self.trend_p:.2g}, "
            f"last-half slope {format_quantity(self.late_slope, unit)}/iter, "
            f"{self.samples} samples"
        )


@dataclass(frozen=True)
class Finding:
    """The verdict on one measure (probe) of one check."""

    probe: str  #: the probe's name, e.g. ``"py_blocks"``
    title: str  #: for people, e.g. ``"Python heap (live blocks)"``
    unit: str  #: ``"B"`` for bytes, else a count unit such as ``"blocks"`` or ``"fds"``
    growth_per_iteration: float  #: the robust slope (0 when unavailable)
    limit: float  #: growth per iteration above which an unbounded trend fails the check
    verdict: Verdict
    evidence: Evidence | None = None
    note: str = ""  #: why a measure is unavailable, or what the verdict relied on

    @property
    def leaking(self) -> bool:
        """True when this measure grows without bound beyond its limit."""
        return self.verdict is Verdict.UNBOUNDED

    def overall_ratio(self, iterations: int) -> float:
        """For an inconclusive verdict, the run's whole growth per iteration over the limit (else 0).

        A measure that grew far above its limit over the run, in steps or in
        bursts, is never "within limits", even when no rule could call it a leak.
        """
        if self.verdict is not Verdict.INCONCLUSIVE or self.evidence is None or iterations <= 0 or self.limit <= 0:
            return 0.0
        return max(0.0, self.evidence.total_growth / iterations / self.limit)

    @property
    def rising_within_limit(self) -> bool:
        """Judged not leaking, yet rising significantly (trend p < 0.01, slope interval above 0)."""
        e = self.evidence
        return (
            self.verdict is Verdict.BOUNDED
            and e is not None
            and e.trend_p < 0.01
            and e.slope_low > 0
            and 0 < self.growth_per_iteration <= self.limit
        )

    def describe(self) -> str:
        """One line for people, e.g. ``Python heap (live blocks): +1.00 blocks/iteration ...``."""
        if self.verdict is Verdict.UNAVAILABLE:
            return f"{self.title}: unavailable ({self.note})"
        growth = format_quantity(self.growth_per_iteration, self.unit)
        limit = format_quantity(self.limit, self.unit)
        label = f"within limit ({limit})" if self.rising_within_limit else self.verdict.value
        text = f"{self.title}: {label}, {growth}/iteration (limit {limit})"
        if self.evidence is not None:
            text += f"; {self.evidence.describe(self.unit)}"
        if self.note:
            text += f"; {self.note}"
        return text


@dataclass(frozen=True)
class Series:
    """The raw readings of one probe: ``values[i]`` was read after iteration ``iterations[i]``.

    Iteration numbers count from 1 after the warm-up; the reading at 0 is the
    baseline taken right after the warm-up.
    """

    probe: str
    unit: str
    iterations: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class LeakedHandle:
    """A resource that existed after teardown and not before setup (or ``count`` alike ones)."""

    kind: str  #: ``"fd"``, ``"thread"``, ``"task"``, ``"child"`` or ``"file"``
    description: str  #: what it is: a path, socket address, thread name, coroutine, command line
    stack: str = ""  #: where it was created, when known (the first of a group's)
    count: int = 1  #: how many handles of this kind, creation stack and pattern (see :func:`group_handles`)
    origin: str = ""  #: the innermost user frame of ``stack``: ``"app.py:41 in start_poller"``

    def describe(self) -> str:
        """One line for people: ``470 × thread: 'poller' (...), started at app.py:41 in start_poller``."""
        times = f"{self.count} \u00d7 " if self.count > 1 else ""
        verb = "started" if self.kind in ("thread", "task", "child") else "created"
        where = f", {verb} at {self.origin}" if self.origin else ""
        return f"{times}{self.kind}: {self.description}{where}"


@dataclass(frozen=True)
class UnclosedResource:
    """One kind of resource the garbage collector had to close during the measured iterations."""

    source: str  #: ``"ResourceWarning"`` (or the subclass raised) or ``"unraisable"`` (a finalizer's report)
    message: str  #: the first such event's message, e.g. ``unclosed file <_io.TextIOWrapper name='x' ...>``
    count: int  #: how many of this kind during the measured iterations
    traceback: tuple[str, ...] = ()  #: where the object was allocated (tracemalloc on), innermost last

    def describe(self) -> str:
        """One line for people, e.g. ``34 × unclosed file <_io.TextIOWrapper name='x'>``."""
        return f"{self.count} \u00d7 {self.message}"


@dataclass(frozen=True)
class AllocationSite:
    """A place whose live allocations grew during an attribution window."""

    source: str  #: ``"tracemalloc"`` or ``"memray"``
    location: str  #: ``"path/to/file.py:88"`` or a native ``"function at lib.so"``
    traceback: tuple[str, ...]  #: innermost frame last, harness frames removed
    bytes_per_iteration: float
    blocks_per_iteration: float
    correlation: float  #: 0..1, how closely the growth tracks the iteration count
    #: the library (or standard-library) frame the user's line called, e.g. ``"aiosqlite/core.py:63"``
    via: str = ""
    user_code: bool = True  #: the location is the user's code (else only library frames were found)

    @property
    def where(self) -> str:
        """The location with the library frame it went through: ``app.py:50 (via aiosqlite/core.py:63)``."""
        return f"{self.location} (via {self.via})" if self.via else self.location

    def describe(self) -> str:
        """One line for people."""
        return (
            f"{self.where}: {format_quantity(self.bytes_per_iteration, 'B')}/iteration in "
            f"{self.blocks_per_iteration:.1f} blocks/iteration (tracks iterations: {self.correlation:.2f})"
        )


@dataclass(frozen=True)
class GrowingType:
    """A type whose count of gc-tracked objects grew in step with the iterations."""

    name: str  #: ``"app.User"`` (builtins without the module: ``"dict"``)
    per_iteration: float  #: new live objects per iteration over the window

    def describe(self) -> str:
        """``app.User +1.00/iteration``."""
        return f"{self.name} {self.per_iteration:+.2f}/iteration"


@dataclass(frozen=True)
class ReferrerChain:
    """The shortest chain of references found from a root to one new object of a growing type."""

    root_kind: str  #: ``"module global"``, ``"class attribute"``, ``"thread frame"``, ``"task frame"``, ``"container"``
    links: tuple[str, ...]  #: ``("app._USERS (dict)", "[17]", "app.User")``: the root, each edge, the object's type

    def describe(self) -> str:
        """``app._USERS (dict) → [17] → app.User``."""
        return " \u2192 ".join(self.links)


@dataclass(frozen=True)
class Retention:
    """What keeps the growth alive: growing types, chains of references, references nobody holds."""

    types: tuple[GrowingType, ...] = ()
    chains: tuple[ReferrerChain, ...] = ()
    unheld: str = ""  #: set when objects have more references than referrers: what that means and where
    notes: tuple[str, ...] = ()  #: budgets hit, objects with no chain found
    seconds: float = 0.0  #: time the census and the chains took

    def lines(self) -> list[str]:
        """The failure text's lines (at most 3 chains)."""
        out = []
        if self.types:
            out.append("growing object types: " + ", ".join(t.describe() for t in self.types[:5]))
        out.extend("kept alive by " + c.describe() for c in self.chains[:3])
        if self.unheld:
            out.append(self.unheld)
        out.extend(self.notes)
        return out


@dataclass(frozen=True)
class Attribution:
    """Where the growth came from, from an extra traced window."""

    sites: tuple[AllocationSite, ...] = ()
    notes: tuple[str, ...] = ()  #: fallbacks taken, tools missing, measures memray cannot see
    flamegraph: str | None = None  #: path of a memray flamegraph HTML (relative in results.json)
    window_iterations: int = 0
    retention: Retention | None = None  #: what keeps Python-heap growth alive (census and chains)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one leak check: a verdict per measure and the evidence.

    ``leaking`` is true when any measure grows without bound beyond its limit
    or any handle was left behind after teardown.
    """

    name: str
    iterations: int  #: measured iterations (after the warm-up)
    warmup: int
    findings: tuple[Finding, ...]
    samples: tuple[Series, ...] = ()
    handles: tuple[LeakedHandle, ...] = ()
    attribution: Attribution | None = None
    duration: float = 0.0  #: seconds, whole check
    notes: tuple[str, ...] = ()
    #: ResourceWarnings and unraisable reports of the measured iterations, by kind, most frequent first
    unclosed: tuple[UnclosedResource, ...] = ()

    @property
    def leaking(self) -> bool:
        """True when a measure leaks or a handle was left behind."""
        return bool(self.handles) or any(f.leaking for f in self.findings)

    @property
    def leaks(self) -> tuple[Finding, ...]:
        """The findings whose measure leaks."""
        return tuple(f for f in self.findings if f.leaking)

    def finding(self, probe: str) -> Finding:
        """The finding for ``probe``; ``KeyError`` naming the probes present otherwise."""
        for f in self.findings:
            if f.probe == probe:
                return f
        raise KeyError(f"no finding for probe {probe!r}; have {[f.probe for f in self.findings]}")

    def __str__(self) -> str:
        head = "LEAKING" if self.leaking else "clean"
        lines = [f"{self.name}: {head} after {self.iterations} iterations (+{self.warmup} warm-up)"]
        for f in self.findings:
            if f.leaking:
                lines.append("  LEAK " + f.describe())
        unclear = [f for f in self.findings if f.overall_ratio(self.iterations) >= UNCLEAR_RATIO]
        for f in unclear:
            lines.append(
                f"  INCONCLUSIVE {f.title}: grew {f.overall_ratio(self.iterations):.0f}x its limit overall "
                f"({format_quantity(f.limit, f.unit)}/iteration), not steadily; {f.note}; "
                "more iterations would decide (max_iterations)"
            )
        others = [
            f"{f.probe} {format_quantity(f.growth_per_iteration, f.unit)}"
            + (
                f" (within limit {format_quantity(f.limit, f.unit)})"
                if f.rising_within_limit
                else ""
                if f.verdict is Verdict.BOUNDED
                else f" ({f.verdict.value})"
            )
            for f in self.findings
            if not f.leaking and f.verdict is not Verdict.UNAVAILABLE and f not in unclear
        ]
        if others:
            lines.append("  within limits (growth/iteration): " + ", ".join(others))
        handle_lines = []
        if self.handles:
            groups = group_handles(self.handles)
            handle_lines.append(f"  left behind ({handle_count(self.handles)} handles, {len(groups)} kinds):")
            handle_lines.extend(describe_handle_groups(groups, indent="    "))
        handle_leak = any(f.probe in HANDLE_PROBES for f in self.leaks)
        if handle_leak:  # the line that made the handles comes before any allocation site
            lines.extend(handle_lines)
        attribution = self.attribution
        if attribution is not None and attribution.sites:
            groups_of_sites = site_groups(attribution.sites)
            tools = dict.fromkeys(t for _, ts in groups_of_sites for t in ts)
            legend = "; ".join(TOOL_LABELS.get(t, t) for t in tools)
            lines.append(f"  top growing allocation sites ({legend}):")
            for site, seen_by in groups_of_sites[:5]:
                lines.append(f"    [{', '.join(seen_by)}] {site.describe()}")
                tb = [t for i, t in enumerate(site.traceback) if i == 0 or t != site.traceback[i - 1]]
                lines.extend("      " + t for t in tb[-4:])
        if attribution is not None and attribution.retention is not None:
            lines.extend("  " + line for line in attribution.retention.lines())
        if not handle_leak:
            lines.extend(handle_lines)
        if self.unclosed:
            total = sum(u.count for u in self.unclosed)
            lines.append(
                f"  closed by the garbage collector, not by the code ({total} in {self.iterations} iterations):"
            )
            for u in self.unclosed[:10]:
                lines.append(f"    {u.describe()}")
                if u.traceback:
                    lines.append("      allocated at (most recent call last):")
                    lines.extend("        " + t for t in u.traceback[-6:])
            if len(self.unclosed) > 10:
                lines.append(f"    ... and {len(self.unclosed) - 10} more kinds")
        if attribution is not None:
            lines.extend(f"  note: {n}" for n in attribution.notes)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see ``results.schema.json``)."""
        return to_plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict`'s output."""
        attribution = data.get("attribution")
        return cls(
            name=data["name"],
            iterations=int(data["iterations"]),
            warmup=int(data["warmup"]),
            findings=tuple(
                Finding(
                    probe=f["probe"],
                    title=f["title"],
                    unit=f["unit"],
                    growth_per_iteration=number(f["growth_per_iteration"]),
                    limit=number(f["limit"]),
                    verdict=Verdict(f["verdict"]),
                    evidence=_evidence(f["evidence"]) if f.get("evidence") else None,
                    note=f.get("note", ""),
                )
                for f in data["findings"]
            ),
            samples=tuple(
                Series(s["probe"], s["unit"], tuple(s["iterations"]), tuple(number(v) for v in s["values"]))
                for s in data.get("samples", ())
            ),
            handles=tuple(LeakedHandle(**h) for h in data.get("handles", ())),
            attribution=None
            if attribution is None
            else Attribution(
                sites=tuple(
                    AllocationSite(
                        **{
                            **s,
                            "traceback": tuple(s["traceback"]),
                            "bytes_per_iteration": number(s["bytes_per_iteration"]),
                            "blocks_per_iteration": number(s["blocks_per_iteration"]),
                            "correlation": number(s["correlation"]),
                        }
                    )
                    for s in attribution.get("sites", ())
                ),
                notes=tuple(attribution.get("notes", ())),
                flamegraph=attribution.get("flamegraph"),
                window_iterations=int(attribution.get("window_iterations", 0)),
                retention=_retention(attribution.get("retention")),
            ),
            duration=float(data.get("duration", 0.0)),
            notes=tuple(data.get("notes", ())),
            unclosed=tuple(
                UnclosedResource(u["source"], u["message"], int(u["count"]), tuple(u.get("traceback", ())))
                for u in data.get("unclosed", ())
            ),
        )


@dataclass(frozen=True)
class TestRecord:
    """One leak test of a run: its outcome and, when it got that far, its check result."""

    __test__ = False  # not a pytest test class, despite the name

    id: str  #: pytest node id, or the scenario name given to the API/CLI
    #: ``"passed"``, ``"leaking"``, ``"error"``, ``"skipped"``, ``"not_repeatable"`` (passed once,
    #: failed on a later iteration) or ``"not_judged"`` (one call does not fit the time budget)
    outcome: str
    result: CheckResult | None = None
    message: str = ""  #: the error or skip reason, or the leak summary
    worker: str | None = None  #: the pytest-xdist worker that ran it
    extra: Mapping[str, Any] = field(default_factory=dict)  #: e.g. ``{"valgrind": {...}}``
    plain_seconds: float | None = None  #: the test's first, plain call
    leak_seconds: float | None = None  #: the leak run after that call


@dataclass(frozen=True)
class RunResults:
    """A whole run, as written to ``results.json``."""

    tests: tuple[TestRecord, ...]
    created: str = ""  #: ISO 8601 UTC
    environment: Mapping[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @staticmethod
    def environment_now() -> dict[str, str]:
        """The facts about this interpreter and machine worth keeping with results."""
        return {
            "leakcheck": __version__,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": sys.platform,
            "machine": platform.machine(),
        }

    @classmethod
    def new(cls, tests: Sequence[TestRecord]) -> RunResults:
        """Results stamped with the current time and environment."""
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return cls(tests=tuple(tests), created=now, environment=cls.environment_now())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see ``results.schema.json``)."""
        return {
            "schema": "leakcheck-results",
            "schema_version": self.schema_version,
            "created": self.created,
            "environment": dict(self.environment),
            "tests": [
                {
                    "id": t.id,
                    "outcome": t.outcome,
                    "result": None if t.result is None else t.result.to_dict(),
                    "message": t.message,
                    "worker": t.worker,
                    "extra": to_plain(dict(t.extra)),
                    "plain_seconds": t.plain_seconds,
                    "leak_seconds": t.leak_seconds,
                }
                for t in self.tests
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "<results>") -> RunResults:
        """Rebuild from :meth:`to_dict`'s output; :class:`ResultsFileError` when it is not ours."""
        if not isinstance(data, Mapping) or data.get("schema") != "leakcheck-results":
            raise ResultsFileError(path, 'not a leakcheck results file (no "schema": "leakcheck-results")')
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsFileError(
                path,
                f"schema version {version!r}, this leakcheck reads version {SCHEMA_VERSION}; "
                "re-run the suite or use the leakcheck release that wrote it",
            )
        try:
            environment = data.get("environment", {})
            if not isinstance(environment, Mapping):
                raise TypeError(f"environment is a {type(environment).__name__}, expected an object")
            if not isinstance(data["tests"], list):
                raise TypeError("tests is not a list")
            tests = tuple(
                TestRecord(
                    id=t["id"],
                    outcome=t["outcome"],
                    result=None if t.get("result") is None else CheckResult.from_dict(t["result"]),
                    message=t.get("message", ""),
                    worker=t.get("worker"),
                    extra=t.get("extra") or {},
                    plain_seconds=seconds_or_none(t.get("plain_seconds")),
                    leak_seconds=seconds_or_none(t.get("leak_seconds")),
                )
                for t in data["tests"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsFileError(path, f"malformed results: {type(exc).__name__}: {exc}") from exc
        return cls(
            tests=tests,
            created=str(data.get("created", "")),
            environment=dict(environment),
            schema_version=version,
        )


def _retention(data: Mapping[str, Any] | None) -> Retention | None:
    if data is None:
        return None
    return Retention(
        types=tuple(GrowingType(t["name"], number(t["per_iteration"])) for t in data.get("types", ())),
        chains=tuple(ReferrerChain(c["root_kind"], tuple(c["links"])) for c in data.get("chains", ())),
        unheld=data.get("unheld", ""),
        notes=tuple(data.get("notes", ())),
        seconds=number(data.get("seconds", 0.0)),
    )


def _evidence(data: Mapping[str, Any]) -> Evidence:
    values: dict[str, Any] = {k: (int(v) if k == "samples" else number(v)) for k, v in data.items()}
    return Evidence(**values)


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read a ``results.json``; :class:`ResultsFileError` says plainly what is wrong with it."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(name, "no such file") from None
    except OSError as exc:
        raise ResultsFileError(name, f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ResultsFileError(name, "not text (a binary file?); expected leakcheck's results.json") from None
    if not text.strip():
        raise ResultsFileError(name, "the file is empty (an interrupted run?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFileError(
            name, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); truncated?"
        ) from None
    return RunResults.from_dict(data, path=name)
