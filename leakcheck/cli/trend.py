"""``leakcheck trend RESULTS.json...``: each test's growth per iteration across runs, as HTML."""

from __future__ import annotations

import argparse
import os

from .. import exit_codes
from ..report.files import atomic_write_text
from ..report.trend import render_trend
from .base import CommandError, load_results_arg

__all__ = ["TrendCommand"]


class TrendCommand:
    """Write :func:`leakcheck.report.trend.render_trend`'s page for the given runs."""

    name = "trend"
    help = "Chart growth per iteration across runs"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """The results files, the output and the page title."""
        parser.add_argument("results", nargs="+", metavar="RESULTS.json", help="Results of the runs to chart")
        parser.add_argument("-o", "--output", default="trend.html", help="HTML file to write (default trend.html)")
        parser.add_argument("--title", default="leakcheck trend", help="Page title")

    def run(self, args: argparse.Namespace) -> int:
        """``OK`` once the page is written."""
        runs = [(os.fspath(p), load_results_arg(p)) for p in args.results]
        try:
            atomic_write_text(args.output, render_trend(runs, title=args.title))
        except OSError as exc:
            raise CommandError(f"{args.output}: cannot write: {exc.strerror}") from None
        print(f"wrote {args.output} ({len(runs)} runs)")
        return exit_codes.OK
