"""``leakcheck check MODULE:FUNC``: check one callable for leaks, from the command line."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import exit_codes
from ..config import OPTIONS, add_options, resolve
from ..errors import ConfigError, ScenarioError, StepTimeoutError
from ..targets import load_callable
from .base import CommandError

__all__ = ["CheckCommand"]

_SOURCE = "leakcheck check"


def _load(spec: str, option: str) -> Callable[..., Any]:
    """``--setup`` / ``--teardown``'s callable; its error names the option, not the target."""
    try:
        return load_callable(spec, source=_SOURCE)
    except ConfigError as exc:
        raise ConfigError(option, spec, exc.problem, f"--{option}") from None


def _raised_at(exc: BaseException | None) -> str:
    """`` (at steps.py:4)``: where the user's code raised, the innermost frame of its traceback."""
    if exc is None or exc.__traceback__ is None:
        return ""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f" (at {frame.filename}:{frame.lineno})"


class CheckCommand:
    """Run :func:`leakcheck.check` on a step named ``MODULE:FUNC`` or ``file.py:FUNC``."""

    name = "check"
    help = "Check one callable (MODULE:FUNC or file.py:FUNC) for leaks"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """The target, its setup and teardown, ``--report`` and every ``--leak-*`` setting."""
        parser.add_argument("target", help="The step: MODULE:FUNCTION or path/to/file.py:FUNCTION (sync or async)")
        parser.add_argument("--setup", help="Called once before; its return value is passed to the step")
        parser.add_argument("--teardown", help="Called once after, with the setup's return value")
        parser.add_argument("--report", metavar="DIR", help="Write the HTML report and results.json to DIR")
        add_options(parser.add_argument)

    def run(self, args: argparse.Namespace) -> int:
        """``FOUND`` when the step leaks, else ``OK``; a step that raises is bad input, one that hangs ``CRASHED``."""
        from ..api import check
        from ..report import ensure_writable_report_dir, write_report
        from ..results import RunResults, TestRecord

        if args.report:
            # Before the check runs, not after minutes of it.
            ensure_writable_report_dir(args.report, option="--report")
        step = load_callable(args.target, source=_SOURCE)
        setup = _load(args.setup, "setup") if args.setup else None
        teardown = _load(args.teardown, "teardown") if args.teardown else None
        settings = resolve(None, {o.name: getattr(args, "leak_" + o.name) for o in OPTIONS})
        try:
            result = check(
                step,
                setup=setup,
                teardown=teardown,
                name=args.target,
                settings=settings,
                report=args.report,
            )
        except ScenarioError as exc:
            # The user's code raised: say where, and that the fix is in it (no traceback).
            part = "setup" if exc.phase == "setup" else "teardown" if exc.phase == "teardown" else "step"
            raise CommandError(f"{exc}{_raised_at(exc.__cause__)}; fix the {part}, then check it again") from None
        except StepTimeoutError as exc:
            # Not bad input, and no verdict: the same status as a valgrind run that timed out.
            print(f"leakcheck check: {exc}", file=sys.stderr)
            return exit_codes.CRASHED
        print(result)
        if args.report:
            outcome = "leaking" if result.leaking else "passed"
            index = write_report(RunResults.new([TestRecord(args.target, outcome, result)]), Path(args.report))
            print(f"report: {index}")
        return exit_codes.FOUND if result.leaking else exit_codes.OK
