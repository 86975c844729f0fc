"""Stored baselines: the results a nightly run is compared with.

A baseline is an ordinary ``results.json`` (same schema), kept small: the
attribution (allocation tracebacks, flamegraph paths) is dropped by default
because :mod:`leakcheck.compare` needs only the findings and the series, and a
baseline under review in a pull request should read as numbers, not stacks.

Baselines are per interpreter and platform, since memory growth differs
between CPython versions: :func:`default_baseline_path` names them
``baselines/<platform>-py<major.minor>.json`` (``baselines/linux-py3.12.json``).

``leakcheck baseline update RESULTS.json [--to PATH]`` stores one atomically,
``leakcheck baseline show [PATH]`` prints one, and ``leakcheck baseline path
RESULTS.json`` prints where ``update`` would store it (for CI scripts); the
subcommand is :mod:`leakcheck.cli.baseline`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..results import RunResults, TestRecord
from .files import load_run, write_results

__all__ = [
    "DEFAULT_DIRECTORY",
    "default_baseline_path",
    "describe_baseline",
    "make_baseline",
    "update_baseline",
]

DEFAULT_DIRECTORY = "baselines"


def default_baseline_path(results: RunResults, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY) -> Path:
    """``<directory>/<platform>-py<major.minor>.json`` from the run's environment.

    Raises :class:`ValueError` when the results do not say which Python or
    platform they came from (then pass ``--to``).
    """
    python = str(results.environment.get("python", ""))
    platform = str(results.environment.get("platform", ""))
    match = re.match(r"^(\d+)\.(\d+)", python)
    if not match or not re.fullmatch(r"[A-Za-z0-9_.-]+", platform):
        raise ValueError(
            f"the results do not record their Python version and platform "
            f"(python={python!r}, platform={platform!r}); name the baseline with --to"
        )
    return Path(directory) / f"{platform}-py{match.group(1)}.{match.group(2)}.json"


def make_baseline(results: RunResults, *, keep_attribution: bool = False) -> RunResults:
    """The run as it will be stored: the same tests, without attribution unless asked."""
    if keep_attribution:
        return results
    tests = tuple(
        t
        if t.result is None or t.result.attribution is None
        else dataclasses.replace(t, result=dataclasses.replace(t.result, attribution=None))
        for t in results.tests
    )
    return dataclasses.replace(results, tests=tests)


def update_baseline(
    results_path: str | os.PathLike[str],
    target: str | os.PathLike[str] | None = None,
    *,
    directory: str | os.PathLike[str] = DEFAULT_DIRECTORY,
    keep_attribution: bool = False,
) -> tuple[Path, RunResults]:
    """Read ``results_path`` and store it as a baseline, atomically; return where and what.

    :class:`~leakcheck.errors.ResultsFileError` when the results cannot be
    read, :class:`ValueError` when no target is given and none can be derived.
    """
    results = load_run(results_path)
    path = Path(target) if target is not None else default_baseline_path(results, directory)
    baseline = make_baseline(results, keep_attribution=keep_attribution)
    write_results(path, baseline)
    return path, baseline


def _state(t: TestRecord) -> str:
    if t.result is not None:
        return "LEAKING" if t.result.leaking else "clean"
    return t.outcome


def describe_baseline(results: RunResults, name: str = "") -> str:
    """A short listing: when, where, and each test's state and growth per measure."""
    env = results.environment
    where = ", ".join(f"{k} {env[k]}" for k in ("python", "platform", "machine", "leakcheck") if env.get(k))
    lines = [f"{name or 'baseline'}: {len(results.tests)} tests, created {results.created or 'unknown'}"]
    if where:
        lines.append(f"  {where}")
    for t in results.tests:
        lines.append(f"  {_state(t):<8} {t.id}")
        if t.result is not None:
            lines.extend(f"             {f.describe()}" for f in t.result.findings if f.verdict.value != "unavailable")
    return "\n".join(lines) + "\n"
