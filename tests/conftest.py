"""Shared builders of result objects, the trap runner, headless chromium, and the ``private_tmp`` and
``release_traps`` fixtures.

The builders are plain functions (``from conftest import make_check``) so that
module-level test data and helpers can use them as well as tests. Each fills in
what a test does not care about with the same dull values, so a test names only
what it checks: ``make_check(findings=(make_finding(growth=5.0),))``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from traps.leaks import Trap, release_all

import leakcheck
from leakcheck.results import (
    Attribution,
    CheckResult,
    Evidence,
    Finding,
    LeakedHandle,
    RunResults,
    Series,
    TestRecord,
    Verdict,
)

#: Title and unit of the probes the test data uses, as the probes report them.
PROBE_LABELS = {
    "py_blocks": ("Python heap (live blocks)", "blocks"),
    "native_heap": ("Native heap (malloc)", "B"),
    "fds": ("File descriptors", "fds"),
    "rss": ("RSS", "B"),
}

CREATED = "2025-01-01T00:00:00+00:00"
ENVIRONMENT = {"python": "3.12.3", "platform": "linux"}


def make_evidence(
    slope: float,
    *,
    trend_z: float = 6.5,
    trend_p: float = 1e-9,
    iterations: int = 60,
) -> Evidence:
    """Evidence of a steady ``slope`` over ``iterations``: a tight interval, no plateau."""
    return Evidence(slope, slope * 0.9, slope * 1.1, trend_z, trend_p, slope, slope * iterations, iterations + 1)


def make_series(
    probe: str = "py_blocks",
    unit: str = "blocks",
    per_iteration: float = 1.0,
    *,
    n: int = 60,
    base: float = 1000.0,
) -> Series:
    """Readings at iterations 0..n rising by ``per_iteration``, every fifth one 7 higher."""
    # The bump keeps the series from being a perfect line, as real readings never are.
    values = tuple(base + per_iteration * i + (7 if i % 5 == 0 else 0) for i in range(n + 1))
    return Series(probe, unit, tuple(range(n + 1)), values)


def make_finding(
    probe: str = "py_blocks",
    growth: float = 1.0,
    limit: float = 0.5,
    verdict: Verdict | None = None,
    *,
    title: str | None = None,
    unit: str | None = None,
    evidence: Evidence | None = None,
    note: str = "",
) -> Finding:
    """A finding for ``probe``; the verdict is unbounded above the limit unless given."""
    known_title, known_unit = PROBE_LABELS.get(probe, (probe, "blocks"))
    if verdict is None:
        verdict = Verdict.UNBOUNDED if growth > limit else Verdict.BOUNDED
    return Finding(
        probe,
        known_title if title is None else title,
        known_unit if unit is None else unit,
        growth,
        limit,
        verdict,
        evidence,
        note,
    )


def make_check(
    name: str = "t",
    *,
    findings: tuple[Finding, ...] | None = None,
    samples: tuple[Series, ...] = (),
    handles: tuple[LeakedHandle, ...] = (),
    iterations: int = 200,
    warmup: int = 20,
    attribution: Attribution | None = None,
    duration: float = 0.0,
) -> CheckResult:
    """A check result; by default one bounded Python-heap finding."""
    if findings is None:
        findings = (make_finding(growth=0.0),)
    return CheckResult(name, iterations, warmup, findings, samples, handles, attribution, duration)


def make_record(
    test_id: str,
    result: CheckResult | None = None,
    outcome: str | None = None,
    message: str = "",
    *,
    worker: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TestRecord:
    """A test record; with a result and no outcome, "leaking" or "passed" as the result says."""
    if outcome is None:
        if result is None:
            raise ValueError("a record without a result needs its outcome")
        outcome = "leaking" if result.leaking else "passed"
    return TestRecord(test_id, outcome, result, message, worker, {} if extra is None else extra)


def make_run(
    *records: TestRecord,
    created: str = CREATED,
    environment: Mapping[str, str] | None = None,
) -> RunResults:
    """A results file's content: ``records`` in order, with a fixed date and environment."""
    env = ENVIRONMENT if environment is None else environment
    return RunResults(records, created=created, environment=dict(env))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at an empty directory, to check what the engine leaves behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def check_trap(trap: Trap, **options: object) -> CheckResult:
    """Check ``trap`` through the API with its own options, no attribution unless ``options`` ask for it."""
    kwargs = {"attribution": "off", **trap.options, **options}
    return leakcheck.check(trap.step, setup=trap.setup, teardown=trap.teardown, **kwargs)


@pytest.fixture
def release_traps() -> Iterator[None]:
    """After the test, unblock the threads, reap the children and delete the files its traps leaked."""
    yield
    release_all()


def chromium() -> str | None:
    """The headless browser the slow report tests render pages in, or ``None`` where none is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless chromium with ``args`` and a private ``profile`` directory, offline and quiet."""
    exe = chromium()
    assert exe is not None
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
