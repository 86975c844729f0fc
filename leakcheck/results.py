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
import math
import os
import platform
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ResultsFileError
from .units import format_quantity

__all__ = [
    "SCHEMA_VERSION",
    "AllocationSite",
    "Attribution",
    "CheckResult",
    "Evidence",
    "Finding",
    "LeakedHandle",
    "RunResults",
    "Series",
    "TestRecord",
    "Verdict",
    "atomic_write_text",
    "load_results",
    "write_results",
]

#: Bumped whenever a field changes meaning or disappears; adding fields keeps it.
SCHEMA_VERSION = 1


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

    def describe(self) -> str:
        """One line for people, e.g. ``Python heap (live blocks): +1.00 blocks/iteration ...``."""
        if self.verdict is Verdict.UNAVAILABLE:
            return f"{self.title}: unavailable ({self.note})"
        growth = format_quantity(self.growth_per_iteration, self.unit)
        limit = format_quantity(self.limit, self.unit)
        text = f"{self.title}: {self.verdict.value}, {growth}/iteration (limit {limit})"
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
    """A resource that existed after teardown and not before setup."""

    kind: str  #: ``"fd"``, ``"thread"``, ``"task"``, ``"child"`` or ``"file"``
    description: str  #: what it is: a path, socket address, thread name, coroutine, command line
    stack: str = ""  #: where it was created, when known

    def describe(self) -> str:
        """One line for people."""
        return f"{self.kind}: {self.description}"


@dataclass(frozen=True)
class AllocationSite:
    """A place whose live allocations grew during an attribution window."""

    source: str  #: ``"tracemalloc"`` or ``"memray"``
    location: str  #: ``"path/to/file.py:88"`` or a native ``"function at lib.so"``
    traceback: tuple[str, ...]  #: innermost frame last, harness frames removed
    bytes_per_iteration: float
    blocks_per_iteration: float
    correlation: float  #: 0..1, how closely the growth tracks the iteration count

    def describe(self) -> str:
        """One line for people."""
        return (
            f"{self.location}: {format_quantity(self.bytes_per_iteration, 'B')}/iteration in "
            f"{self.blocks_per_iteration:.1f} blocks/iteration (tracks iterations: {self.correlation:.2f})"
        )


@dataclass(frozen=True)
class Attribution:
    """Where the growth came from, from an extra traced window."""

    sites: tuple[AllocationSite, ...] = ()
    notes: tuple[str, ...] = ()  #: fallbacks taken, tools missing, measures memray cannot see
    flamegraph: str | None = None  #: path of a memray flamegraph HTML (relative in results.json)
    window_iterations: int = 0


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
        others = [
            f"{f.probe} {format_quantity(f.growth_per_iteration, f.unit)}"
            + ("" if f.verdict is Verdict.BOUNDED else f" ({f.verdict.value})")
            for f in self.findings
            if not f.leaking and f.verdict is not Verdict.UNAVAILABLE
        ]
        if others:
            lines.append("  within limits (growth/iteration): " + ", ".join(others))
        if self.handles:
            lines.append(f"  left behind after teardown ({len(self.handles)}):")
            groups = _group_handles(self.handles)
            for (handle, count) in groups[:10]:
                times = f" (x{count}, alike)" if count > 1 else ""
                lines.append(f"    {handle.describe()}{times}")
                if handle.stack:
                    lines.extend("      " + s for s in handle.stack.rstrip().splitlines()[-6:])
            if len(groups) > 10:
                lines.append(f"    ... and {len(groups) - 10} more kinds")
        if self.attribution is not None and self.attribution.sites:
            lines.append("  top growing allocation sites:")
            for site in self.attribution.sites[:5]:
                lines.append(f"    {site.describe()}")
                lines.extend("      " + t for t in site.traceback[-4:])
        if self.attribution is not None:
            lines.extend(f"  note: {n}" for n in self.attribution.notes)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see ``results.schema.json``)."""
        return _to_plain(self)  # type: ignore[no-any-return]

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
                    growth_per_iteration=_num(f["growth_per_iteration"]),
                    limit=_num(f["limit"]),
                    verdict=Verdict(f["verdict"]),
                    evidence=_evidence(f["evidence"]) if f.get("evidence") else None,
                    note=f.get("note", ""),
                )
                for f in data["findings"]
            ),
            samples=tuple(
                Series(s["probe"], s["unit"], tuple(s["iterations"]), tuple(_num(v) for v in s["values"]))
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
                            "bytes_per_iteration": _num(s["bytes_per_iteration"]),
                            "blocks_per_iteration": _num(s["blocks_per_iteration"]),
                            "correlation": _num(s["correlation"]),
                        }
                    )
                    for s in attribution.get("sites", ())
                ),
                notes=tuple(attribution.get("notes", ())),
                flamegraph=attribution.get("flamegraph"),
                window_iterations=int(attribution.get("window_iterations", 0)),
            ),
            duration=float(data.get("duration", 0.0)),
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True)
class TestRecord:
    """One leak test of a run: its outcome and, when it got that far, its check result."""

    __test__ = False  # not a pytest test class, despite the name

    id: str  #: pytest node id, or the scenario name given to the API/CLI
    outcome: str  #: ``"passed"``, ``"leaking"``, ``"error"`` or ``"skipped"``
    result: CheckResult | None = None
    message: str = ""  #: the error or skip reason, or the leak summary
    worker: str | None = None  #: the pytest-xdist worker that ran it
    extra: Mapping[str, Any] = field(default_factory=dict)  #: e.g. ``{"valgrind": {...}}``


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
        from . import __version__

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
                    "extra": _to_plain(dict(t.extra)),
                }
                for t in self.tests
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "<results>") -> RunResults:
        """Rebuild from :meth:`to_dict`'s output; :class:`ResultsFileError` when it is not ours."""
        if not isinstance(data, Mapping) or data.get("schema") != "leakcheck-results":
            raise ResultsFileError(path, "not a leakcheck results file (no \"schema\": \"leakcheck-results\")")
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


def _group_handles(handles: Sequence[LeakedHandle]) -> list[tuple[LeakedHandle, int]]:
    """Handles that differ only by numbers (fd 7, Task-12) grouped, first seen first."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for h in handles:
        key = (h.kind, re.sub(r"\d+", "N", h.description), h.stack)
        if key in groups:
            groups[key][1] += 1
        else:
            groups[key] = [h, 1]
    return [(h, n) for h, n in groups.values()]


def _num(value: object) -> float:
    """A float from JSON, where NaN was written as ``null``."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _evidence(data: Mapping[str, Any]) -> Evidence:
    values: dict[str, Any] = {k: (int(v) if k == "samples" else _num(v)) for k, v in data.items()}
    return Evidence(**values)


def _to_plain(value: Any) -> Any:
    """Dataclasses, enums, tuples and mappings to JSON-ready values."""
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {name: _to_plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return None
    return value


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and a rename.

    An interrupted run leaves either the old file or the new one, never half of one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_results(path: str | os.PathLike[str], results: RunResults) -> None:
    """Write ``results`` as JSON to ``path``, atomically."""
    atomic_write_text(path, json.dumps(results.to_dict(), indent=1, allow_nan=False) + "\n")


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
