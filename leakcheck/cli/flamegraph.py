"""``leakcheck flamegraph CAPTURE.bin``: memray's flamegraph of the allocations a capture leaked."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import exit_codes
from ..errors import LeakcheckError, ToolMissingError
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
        # Both checked before memray runs, and both reported at once.
        problems = []
        if not capture.is_file():
            problems.append(f"{capture}: no such memray capture file; {_CAPTURE_HINT}")
        unwritable = _unwritable(out)
        if unwritable:
            problems.append(_cannot_write(out, unwritable))
        if problems:
            raise CommandError("; and ".join(problems))
        try:
            render_flamegraph(capture, out)
        except OSError as exc:
            raise CommandError(_cannot_write(out, exc.strerror or str(exc))) from None
        except LeakcheckError as exc:
            if isinstance(exc, ToolMissingError):
                raise
            raise CommandError(f"{exc}; {_CAPTURE_HINT}") from None
        print(out)
        return exit_codes.OK


#: Where a capture comes from, for the message about a file that is not one.
_CAPTURE_HINT = "pass a capture written by `memray run` or kept in a report (DIR/tests/<test>/memray-leaks.bin)"


def _cannot_write(out: Path, reason: str) -> str:
    return f"{out}: cannot write the flamegraph ({reason}); give -o a path in a writable directory"


def _unwritable(out: Path) -> str:
    """Why ``out`` cannot be written (its folder cannot be made or written), or ``""``."""
    if out.is_dir():
        return "it is a directory"
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return ""
