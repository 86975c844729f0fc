"""``leakcheck valgrind TARGET [N]``: memcheck a leak test, native losses per iteration.

Also ``scripts/valgrind.sh``.  Exit status: ``OK`` clean, ``FOUND`` leaking,
``BAD_INPUT`` a usage error or valgrind missing, ``CRASHED`` the child crashed, timed
out or failed (its log is kept).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from .. import exit_codes
from ..valgrind import (
    DEFAULT_ITERATIONS,
    DEFAULT_MIN_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_TOP,
    DEFAULT_WARMUP,
    run_valgrind,
)
from .base import CommandError

__all__ = ["ValgrindCommand"]


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``, with the fix in its error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


class ValgrindCommand:
    """Run :func:`leakcheck.valgrind.run_valgrind` and print its short verdict."""

    name = "valgrind"
    help = "Run a leak test under valgrind memcheck"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """The target, N, and the knobs of :func:`~leakcheck.valgrind.run_valgrind`."""
        parser.description = (
            "Run a leak test under valgrind memcheck and report the native memory it loses "
            "per iteration. Exit status: 0 clean, 1 leaking, 2 usage error or valgrind "
            "missing, 3 the run crashed, timed out or failed."
        )
        parser.add_argument(
            "target",
            help="A pytest node id of a @pytest.mark.leak test, or path/to/file.py:function (or module:function)",
        )
        parser.add_argument(
            "iterations",
            nargs="?",
            type=_count(1),
            default=None,
            help=f"Iterations of the shorter run; the longer runs twice as many (default {DEFAULT_ITERATIONS})",
        )
        parser.add_argument(
            "--iterations",
            dest="iterations_option",
            type=_count(1),
            default=None,
            help="Same as the ITERATIONS positional",
        )
        parser.add_argument(
            "--warmup",
            type=_count(0),
            default=DEFAULT_WARMUP,
            help=f"Untracked calls before the iterations (default {DEFAULT_WARMUP})",
        )
        parser.add_argument(
            "--suppressions",
            action="append",
            default=[],
            metavar="FILE",
            help="Extra valgrind suppression file (repeatable)",
        )
        parser.add_argument(
            "--focus",
            action="append",
            default=[],
            metavar="PATTERN",
            help="Only count loss records with a frame whose object, function or "
            "file matches this fnmatch pattern (repeatable; default: any frame "
            "outside the interpreter and libc)",
        )
        parser.add_argument(
            "--valgrind",
            default="valgrind",
            metavar="PATH",
            help="The valgrind executable (default: valgrind on PATH)",
        )
        parser.add_argument(
            "--python",
            default=None,
            metavar="PATH",
            help="The python that runs the target (default: this one)",
        )
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"Kill a run after this long (default {DEFAULT_TIMEOUT:g})",
        )
        parser.add_argument(
            "--min-bytes",
            type=float,
            default=DEFAULT_MIN_BYTES,
            metavar="BYTES",
            help=f"Definitely+indirectly lost bytes per iteration that count as a leak (default {DEFAULT_MIN_BYTES:g})",
        )
        parser.add_argument(
            "--include-possible",
            action="store_true",
            help="Count possibly-lost bytes towards the limit too",
        )
        parser.add_argument(
            "--top",
            type=_count(0),
            default=DEFAULT_TOP,
            help=f"Loss records to show (default {DEFAULT_TOP})",
        )
        parser.add_argument(
            "--serial",
            action="store_true",
            help="Run the two valgrind runs one after the other, not in parallel",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="Keep valgrind's XML and logs (their directory is printed)",
        )
        parser.add_argument("--json", default=None, metavar="FILE", help="Also write the report as JSON to FILE")
        parser.add_argument(
            "--valgrind-arg",
            action="append",
            default=[],
            metavar="ARG",
            help="Extra argument for valgrind, e.g. --valgrind-arg=--track-origins=yes",
        )

    def run(self, args: argparse.Namespace) -> int:
        """``OK`` clean, ``FOUND`` leaking, ``CRASHED`` when a child crashed, timed out, failed."""
        iterations = next((n for n in (args.iterations_option, args.iterations) if n is not None), DEFAULT_ITERATIONS)
        report = run_valgrind(
            args.target,
            iterations=iterations,
            warmup=args.warmup,
            suppressions=args.suppressions,
            focus=args.focus,
            valgrind=args.valgrind,
            python=args.python,
            timeout=args.timeout,
            keep=args.keep,
            parallel=not args.serial,
            min_bytes_per_iteration=args.min_bytes,
            include_possible=args.include_possible,
            valgrind_args=args.valgrind_arg,
            top=args.top,
        )
        print(report)
        if args.json:
            text = json.dumps(report.to_dict(), indent=2) + "\n"
            try:
                Path(args.json).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"{args.json}: cannot write: {exc.strerror}") from None
        statuses = {"clean": exit_codes.OK, "leaking": exit_codes.FOUND}
        return statuses.get(report.status, exit_codes.CRASHED)
