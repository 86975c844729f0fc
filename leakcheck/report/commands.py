"""``leakcheck report`` and ``leakcheck flamegraph``: argument builders and runners for the CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = [
    "add_flamegraph_arguments",
    "add_report_arguments",
    "run_flamegraph_command",
    "run_report_command",
]


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``leakcheck report DIR``."""
    parser.description = (
        "Re-render the HTML report in DIR from DIR/results.json and any kept memray captures"
    )
    parser.add_argument("directory", metavar="DIR", help="A report directory (holds results.json)")


def run_report_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck report``; 0 on success, 2 when the results cannot be read or written."""
    from ..errors import LeakcheckError
    from . import ensure_writable_report_dir, rerender_report

    try:
        ensure_writable_report_dir(args.directory, option="DIR")
        index, notes = rerender_report(args.directory)
    except LeakcheckError as exc:
        print(f"leakcheck report: error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"leakcheck report: {note}", file=sys.stderr)
    print(index)
    return 0


def add_flamegraph_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``leakcheck flamegraph CAPTURE.bin -o OUT.html``."""
    parser.description = "Write memray's flamegraph of the allocations leaked in a memray capture"
    parser.add_argument("capture", metavar="CAPTURE.bin", help="A memray capture file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.html",
        default=None,
        help="Where to write the flamegraph (default: CAPTURE-flamegraph.html next to the capture)",
    )


def run_flamegraph_command(args: argparse.Namespace) -> int:
    """Run ``leakcheck flamegraph``; 0 on success, 2 on a missing tool or a bad capture."""
    from ..attribution import render_flamegraph
    from ..errors import LeakcheckError

    capture = Path(args.capture)
    out = Path(args.output) if args.output else capture.with_name(f"{capture.stem}-flamegraph.html")
    try:
        render_flamegraph(capture, out)
    except LeakcheckError as exc:
        print(f"leakcheck flamegraph: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0
