"""The ``leakcheck compare`` subcommand: arguments, reading the files, exit status."""

from __future__ import annotations

import argparse
import math
import os
import sys

from ..errors import ResultsFileError
from ..results import RunResults, load_results
from .core import EXIT_BAD_INPUT, compare
from .format import format_markdown, format_text

__all__ = ["add_compare_arguments", "load_run", "run_compare_command"]


def load_run(path: str | os.PathLike[str]) -> RunResults:
    """:func:`~leakcheck.results.load_results`, with every failure as :class:`ResultsFileError`."""
    name = os.fspath(path)
    try:
        return load_results(path)
    except ResultsFileError:
        raise
    except UnicodeDecodeError:
        raise ResultsFileError(name, "not UTF-8 text (is it a results.json?)") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(name, f"malformed results: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ResultsFileError(name, "malformed results: nested too deeply") from None


def _fraction(text: str) -> float:
    """``10%``, ``0.1`` → 0.1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction such as 0.1 or 10%, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _alpha(text: str) -> float:
    value = _fraction(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text!r}")
    return value


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``leakcheck compare``'s arguments to ``parser`` (a subcommand parser)."""
    parser.add_argument("baseline", metavar="BASELINE.json", help="Results of the reference run")
    parser.add_argument("current", metavar="CURRENT.json", help="Results of the run to judge")
    parser.add_argument(
        "--threshold",
        type=_fraction,
        default=0.10,
        help="Relative rise of growth per iteration or peak that counts, e.g. 0.1 or 10%% (default 10%%)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.01,
        help="One-sided Mann-Whitney significance level on per-iteration deltas (default 0.01)",
    )
    parser.add_argument(
        "--min-effect",
        type=_fraction,
        default=0.25,
        help="Absolute floor on a rise, as a fraction of the finding's limit (default 0.25)",
    )
    parser.add_argument(
        "--correction",
        choices=("holm", "none"),
        default="holm",
        help="Multiple-comparison correction over all measures compared (default holm)",
    )
    parser.add_argument(
        "--fail-on-missing",
        action="store_true",
        default=False,
        help="Exit 1 when a baseline test is missing from the current run",
    )
    parser.add_argument(
        "--markdown", action="store_true", default=False, help="Print Markdown instead of text"
    )
    parser.add_argument(
        "--summary",
        metavar="FILE",
        default=None,
        help="Also append the Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    parser.set_defaults(func=run_compare_command)


def run_compare_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck compare``: 0 no regression, 1 regression, 2 unreadable input."""
    try:
        baseline = load_run(args.baseline)
        current = load_run(args.current)
    except ResultsFileError as exc:
        print(f"leakcheck compare: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    comparison = compare(
        baseline,
        current,
        threshold=args.threshold,
        alpha=args.alpha,
        min_effect=args.min_effect,
        correction=args.correction,
    )
    names = {"baseline_name": os.fspath(args.baseline), "current_name": os.fspath(args.current)}
    out = (
        format_markdown(comparison, **names) if args.markdown else format_text(comparison, **names)
    )
    sys.stdout.write(out)
    if args.summary:
        try:
            with open(args.summary, "a", encoding="utf-8") as fh:
                fh.write(format_markdown(comparison, **names))
        except OSError as exc:
            print(
                f"leakcheck compare: error: {args.summary}: cannot append: {exc.strerror}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    return comparison.exit_status(fail_on_missing=args.fail_on_missing)
