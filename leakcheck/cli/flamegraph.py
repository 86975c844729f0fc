"""``leakcheck flamegraph CAPTURE.bin``: memray's flamegraph of the allocations a capture leaked."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import exit_codes
from .base import CommandError

__all__ = ["FlamegraphCommand"]


class FlamegraphCommand:
    """Write memray's leaks flamegraph of one capture (memray is imported only here, when run)."""

    name = "flamegraph"
    help = "memray leaks flamegraph of a capture"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """The capture and ``-o OUT.html``."""
        parser.description = "Write memray's flamegraph of the allocations leaked in a memray capture"
        parser.add_argument("capture", metavar="CAPTURE.bin", help="A memray capture file")
        parser.add_argument(
            "-o",
            "--output",
            metavar="OUT.html",
            default=None,
            help="Where to write the flamegraph (default: CAPTURE-flamegraph.html next to the capture)",
        )

    def run(self, args: argparse.Namespace) -> int:
        """Print the flamegraph's path."""
        from ..attribution import render_flamegraph

        capture = Path(args.capture)
        out = Path(args.output) if args.output else capture.with_name(f"{capture.stem}-flamegraph.html")
        try:
            render_flamegraph(capture, out)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CommandError(
                f"{out}: cannot write the flamegraph ({reason}); give -o a path in a writable directory"
            ) from None
        print(out)
        return exit_codes.OK
