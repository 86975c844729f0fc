"""``leakcheck report DIR``: re-render a report directory's HTML from its ``results.json``.

``leakcheck report DIR --merge SHARD...`` writes one report in DIR from the
reports of several ``--leak-shard`` jobs, and prints its summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import exit_codes

__all__ = ["ReportCommand"]


class ReportCommand:
    """Re-render ``DIR``'s HTML, and make flamegraphs from any memray captures kept there."""

    name = "report"
    help = "Re-render the HTML report from DIR/results.json"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """One directory."""
        parser.description = "Re-render the HTML report in DIR from DIR/results.json and any kept memray captures"
        parser.add_argument("directory", metavar="DIR", help="A report directory (holds results.json)")
        parser.add_argument(
            "--merge",
            nargs="+",
            metavar="SHARD",
            default=None,
            help="Write DIR from these shard reports (directories or results.json files) instead",
        )
        parser.add_argument(
            "--flamegraphs",
            metavar="N",
            default="20",
            help="Make missing flamegraphs of the N worst leaking tests from their kept memray "
            "captures (default 20; 'all' for every one)",
        )

    def run(self, args: argparse.Namespace) -> int:
        """Print the notes on stderr and the index path on stdout."""
        from ..report import ensure_writable_report_dir, rerender_report
        from ..report.flames import parse_flamegraphs

        ensure_writable_report_dir(args.directory, option="DIR")
        flamegraphs = parse_flamegraphs(args.flamegraphs, "--flamegraphs")
        if args.merge:
            return self._merge(args, flamegraphs)
        index, notes = rerender_report(args.directory, flamegraphs=flamegraphs)
        for note in notes:
            print(f"leakcheck report: {note}", file=sys.stderr)
        print(index)
        return exit_codes.OK

    def _merge(self, args: argparse.Namespace, flamegraphs: int | None) -> int:
        """One report from the shards; the summary on stderr, the index path on stdout."""
        from ..report.merge import merge_reports
        from ..suite import summarize, summary_lines

        merged = merge_reports(args.merge, args.directory, flamegraphs=flamegraphs)
        tests = [summarize(t) for t in merged.tests]
        counts = {k: sum(t.outcome == k for t in tests) for k in ("leaking", "not_repeatable", "not_judged")}
        line = f"{len(tests)} leak tests, {counts['leaking']} leaking"
        line += "".join(f", {counts[k]} {k.replace('_', ' ')}" for k in ("not_repeatable", "not_judged") if counts[k])
        print(f"leakcheck report: merged {len(args.merge)} shards: {line}", file=sys.stderr)
        for text in summary_lines(tests):
            print(text, file=sys.stderr)
        print(Path(args.directory).resolve() / "index.html")
        return exit_codes.OK
