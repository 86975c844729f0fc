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
RESULTS.json`` prints where ``update`` would store it (for CI scripts).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

from .compare import EXIT_BAD_INPUT, EXIT_OK, load_run
from .errors import ResultsFileError
from .results import RunResults, TestRecord, write_results

__all__ = [
    "DEFAULT_DIRECTORY",
    "add_baseline_arguments",
    "default_baseline_path",
    "describe_baseline",
    "make_baseline",
    "run_baseline_command",
    "update_baseline",
]

DEFAULT_DIRECTORY = "baselines"


def default_baseline_path(
    results: RunResults, directory: str | os.PathLike[str] = DEFAULT_DIRECTORY
) -> Path:
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
    where = ", ".join(
        f"{k} {env[k]}" for k in ("python", "platform", "machine", "leakcheck") if env.get(k)
    )
    lines = [
        f"{name or 'baseline'}: {len(results.tests)} tests, created {results.created or 'unknown'}"
    ]
    if where:
        lines.append(f"  {where}")
    for t in results.tests:
        lines.append(f"  {_state(t):<8} {t.id}")
        if t.result is not None:
            lines.extend(
                f"             {f.describe()}"
                for f in t.result.findings
                if f.verdict.value != "unavailable"
            )
    return "\n".join(lines) + "\n"


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``leakcheck baseline {update,show,path}`` to ``parser`` (a subcommand parser)."""
    sub = parser.add_subparsers(dest="baseline_command", metavar="{update,show,path}")
    sub.required = True

    update = sub.add_parser("update", help="Store a results.json as the new baseline, atomically")
    update.add_argument("results", metavar="RESULTS.json", help="Results of the run to keep")
    update.add_argument(
        "--to",
        metavar="PATH",
        default=None,
        help="Where to store it (default <dir>/<platform>-py<major.minor>.json)",
    )
    update.add_argument(
        "--dir",
        default=DEFAULT_DIRECTORY,
        help=f"Directory of the default baseline names (default {DEFAULT_DIRECTORY})",
    )
    update.add_argument(
        "--keep-attribution",
        action="store_true",
        default=False,
        help="Keep allocation sites and flamegraph paths (dropped by default)",
    )

    show = sub.add_parser("show", help="Print a stored baseline")
    show.add_argument("baseline", metavar="BASELINE.json", help="The baseline to print")

    path = sub.add_parser("path", help="Print where 'update' would store a results file's baseline")
    path.add_argument("results", metavar="RESULTS.json", help="Results of a run")
    path.add_argument(
        "--dir",
        default=DEFAULT_DIRECTORY,
        help=f"Directory of the default baseline names (default {DEFAULT_DIRECTORY})",
    )
    parser.set_defaults(func=run_baseline_command)


def run_baseline_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck baseline ...``: 0 done, 2 unreadable input or no target."""
    prog = f"leakcheck baseline {args.baseline_command}"
    try:
        if args.baseline_command == "update":
            path, stored = update_baseline(
                args.results, args.to, directory=args.dir, keep_attribution=args.keep_attribution
            )
            leaking = [t.id for t in stored.tests if _state(t) == "LEAKING"]
            other = [f"{t.id} ({t.outcome})" for t in stored.tests if t.result is None]
            print(f"stored baseline {path} ({len(stored.tests)} tests, {len(leaking)} leaking)")
            for tid in leaking:
                print(f"  note: known leak kept in the baseline: {tid}")
            for desc in other:
                print(f"  note: no check result, nothing to compare later: {desc}")
            return EXIT_OK
        if args.baseline_command == "show":
            sys.stdout.write(describe_baseline(load_run(args.baseline), os.fspath(args.baseline)))
            return EXIT_OK
        if args.baseline_command == "path":
            print(default_baseline_path(load_run(args.results), args.dir).as_posix())
            return EXIT_OK
    except ResultsFileError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"{prog}: error: {exc.filename or ''}: cannot write: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    raise AssertionError(f"unknown baseline command {args.baseline_command!r}")
