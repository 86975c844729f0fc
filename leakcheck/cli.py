"""The ``leakcheck`` command: check a callable, run the leak suite, and work with results.

Subcommands::

    leakcheck check MODULE:FUNC [--setup M:F] [--teardown M:F] [--leak-* ...] [--report DIR]
    leakcheck run [PYTEST ARGS...]        pytest -m leak over scenarios/ (or the given paths)
    leakcheck report DIR                  re-render the HTML report from DIR/results.json
    leakcheck flamegraph CAPTURE -o OUT   memray's leaks flamegraph of one capture
    leakcheck compare BASELINE CURRENT    regressions between two results.json files
    leakcheck baseline ...                store or show a baseline
    leakcheck trend RESULTS...            growth per iteration across runs, as HTML
    leakcheck valgrind TARGET [N]         memcheck a leak test, losses per iteration

Exit status: 0 clean, 1 leaking or regressed, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from .config import OPTIONS, add_options, resolve
from .errors import ConfigError, LeakcheckError, ScenarioError

__all__ = ["build_parser", "load_callable", "main"]


def load_callable(spec: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function`` to the callable it names."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError("target", spec, "expected MODULE:FUNCTION or path/to/file.py:FUNCTION", "leakcheck check")
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            if not path.is_file():
                raise ConfigError("target", spec, f"no such file: {path}", "leakcheck check")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[path.stem] = module
            sys.path.insert(0, str(path.parent.resolve()))
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as exc:
        raise ConfigError("target", spec, f"cannot import {target!r}: {exc}", "leakcheck check") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError("target", spec, f"{target!r} has no attribute {attr!r}", "leakcheck check") from None
    if not callable(obj):
        raise ConfigError("target", spec, "is not callable", "leakcheck check")
    return obj  # type: ignore[no-any-return]


def _cmd_check(args: argparse.Namespace) -> int:
    from .api import check
    from .results import RunResults, TestRecord

    step = load_callable(args.target)
    setup = load_callable(args.setup) if args.setup else None
    teardown = load_callable(args.teardown) if args.teardown else None
    settings = resolve(None, {o.name: getattr(args, "leak_" + o.name) for o in OPTIONS})
    try:
        result = check(step, setup=setup, teardown=teardown, name=args.target, settings=settings, report=args.report)
    except ScenarioError as exc:
        print(f"leakcheck: {exc}", file=sys.stderr)
        return 2
    print(result)
    if args.report:
        from .report import write_report

        outcome = "leaking" if result.leaking else "passed"
        index = write_report(RunResults.new([TestRecord(args.target, outcome, result)]), Path(args.report))
        print(f"report: {index}")
    return 1 if result.leaking else 0


def _cmd_run(args: argparse.Namespace) -> int:
    extra = list(args.pytest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    paths = [a for a in extra if not a.startswith("-")]
    command = [sys.executable, "-m", "pytest", "-m", "leak", *([] if paths else ["scenarios/"]), *extra]
    print("+ " + " ".join(command), file=sys.stderr)
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from .baseline import add_baseline_arguments, run_baseline_command
    from .compare import add_compare_arguments, run_compare_command
    from .report import (
        add_flamegraph_arguments,
        add_report_arguments,
        run_flamegraph_command,
        run_report_command,
    )
    from .trend import add_trend_arguments, run_trend_command
    from .valgrind import add_valgrind_arguments, run_valgrind_command

    parser = argparse.ArgumentParser(prog="leakcheck", description="Find memory and resource leaks by repetition.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="Check one callable (MODULE:FUNC or file.py:FUNC) for leaks")
    p.add_argument("target", help="The step: MODULE:FUNCTION or path/to/file.py:FUNCTION (sync or async)")
    p.add_argument("--setup", help="Called once before; its return value is passed to the step")
    p.add_argument("--teardown", help="Called once after, with the setup's return value")
    p.add_argument("--report", metavar="DIR", help="Write the HTML report and results.json to DIR")
    add_options(p.add_argument)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("run", help="Run the pytest leak suite (default: scenarios/); extra args go to pytest")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="Arguments for pytest, e.g. -n auto --leak-report=DIR")
    p.set_defaults(func=_cmd_run)

    for name, add, run, help_text in (
        ("report", add_report_arguments, run_report_command, "Re-render the HTML report from DIR/results.json"),
        ("flamegraph", add_flamegraph_arguments, run_flamegraph_command, "memray leaks flamegraph of a capture"),
        ("compare", add_compare_arguments, run_compare_command, "Compare two results.json files; flag regressions"),
        ("baseline", add_baseline_arguments, run_baseline_command, "Store or show a baseline results file"),
        ("trend", add_trend_arguments, run_trend_command, "Chart growth per iteration across runs"),
        ("valgrind", add_valgrind_arguments, run_valgrind_command, "Run a leak test under valgrind memcheck"),
    ):
        p = sub.add_parser(name, help=help_text)
        add(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leakcheck`` and ``python -m leakcheck``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, LeakcheckError) as exc:
        print(f"leakcheck {args.command}: {exc}", file=sys.stderr)
        return 2
