"""``leakcheck compare BASELINE CURRENT``: regressions between two results files."""

from __future__ import annotations

import argparse
import math
import os
import sys

from ..compare import compare, format_markdown, format_text
from .base import CommandError, load_results_arg

__all__ = ["CompareCommand"]


def _fraction(text: str) -> float:
    """``10%``, ``0.1`` → 0.1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.1 or 10%, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _alpha(text: str) -> float:
    value = _fraction(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text!r}")
    return value


class CompareCommand:
    """Compare two runs with :func:`leakcheck.compare.compare`; print text or Markdown."""

    name = "compare"
    help = "Compare two results.json files; flag regressions"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """The two files, the thresholds of a regression and the output format."""
        parser.add_argument(
            "baseline", metavar="BASELINE.json", help="Results of the reference run (or its report folder)"
        )
        parser.add_argument(
            "current", metavar="CURRENT.json", help="Results of the run to judge (or its report folder)"
        )
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
        parser.add_argument("--markdown", action="store_true", default=False, help="Print Markdown instead of text")
        parser.add_argument(
            "--summary",
            metavar="FILE",
            default=None,
            help="Also append the Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
        )

    def run(self, args: argparse.Namespace) -> int:
        """``FOUND`` on a regression (or with ``--fail-on-missing`` a missing test), else ``OK``."""
        baseline = load_results_arg(args.baseline)
        current = load_results_arg(args.current)
        comparison = compare(
            baseline,
            current,
            threshold=args.threshold,
            alpha=args.alpha,
            min_effect=args.min_effect,
            correction=args.correction,
        )
        names = {"baseline_name": os.fspath(args.baseline), "current_name": os.fspath(args.current)}
        out = format_markdown(comparison, **names) if args.markdown else format_text(comparison, **names)
        sys.stdout.write(out)
        if args.summary:
            try:
                with open(args.summary, "a", encoding="utf-8") as fh:
                    fh.write(format_markdown(comparison, **names))
            except OSError as exc:
                raise CommandError(f"{args.summary}: cannot append: {exc.strerror}") from None
        return comparison.exit_status(fail_on_missing=args.fail_on_missing)
