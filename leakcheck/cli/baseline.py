"""``leakcheck baseline {update,show,path}``: store, print or locate a baseline results file."""

from __future__ import annotations

import argparse
import os
import sys

from .. import exit_codes
from ..report.baseline import (
    DEFAULT_DIRECTORY,
    default_baseline_path,
    describe_baseline,
    update_baseline,
)
from ..report.files import load_run
from .base import CommandError

__all__ = ["BaselineCommand"]


class BaselineCommand:
    """The three baseline actions of :mod:`leakcheck.report.baseline`, as sub-subcommands."""

    name = "baseline"
    help = "Store or show a baseline results file"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """``update``, ``show`` and ``path``, each naming itself in error messages."""
        sub = parser.add_subparsers(dest="baseline_command", metavar="{update,show,path}")
        sub.required = True

        update = sub.add_parser("update", help="Store a results.json as the new baseline, atomically")
        update.add_argument("results", metavar="RESULTS.json", help="Results of the run to keep")
        update.add_argument(
            "--to",
            metavar="PATH",
            default=None,
            help="Where to store it (default <dir>/<platform>-py<major.minor>.json)",
        )
        update.add_argument(
            "--dir",
            default=DEFAULT_DIRECTORY,
            help=f"Directory of the default baseline names (default {DEFAULT_DIRECTORY})",
        )
        update.add_argument(
            "--keep-attribution",
            action="store_true",
            default=False,
            help="Keep allocation sites and flamegraph paths (dropped by default)",
        )

        show = sub.add_parser("show", help="Print a stored baseline")
        show.add_argument("baseline", metavar="BASELINE.json", help="The baseline to print")

        path = sub.add_parser("path", help="Print where 'update' would store a results file's baseline")
        path.add_argument("results", metavar="RESULTS.json", help="Results of a run")
        path.add_argument(
            "--dir",
            default=DEFAULT_DIRECTORY,
            help=f"Directory of the default baseline names (default {DEFAULT_DIRECTORY})",
        )
        for action, subparser in (("update", update), ("show", show), ("path", path)):
            subparser.set_defaults(leakcheck_prog=f"baseline {action}")

    def run(self, args: argparse.Namespace) -> int:
        """``OK`` when done; results that do not say where they ran (and no ``--to``): bad input."""
        try:
            if args.baseline_command == "update":
                return self._update(args)
            if args.baseline_command == "show":
                sys.stdout.write(describe_baseline(load_run(args.baseline), os.fspath(args.baseline)))
                return exit_codes.OK
            if args.baseline_command == "path":
                print(default_baseline_path(load_run(args.results), args.dir).as_posix())
                return exit_codes.OK
        except ValueError as exc:  # default_baseline_path: the run does not say where it ran
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"{exc.filename or ''}: cannot write: {exc.strerror}") from None
        raise AssertionError(f"unknown baseline command {args.baseline_command!r}")

    @staticmethod
    def _update(args: argparse.Namespace) -> int:
        path, stored = update_baseline(
            args.results, args.to, directory=args.dir, keep_attribution=args.keep_attribution
        )
        leaking = [t.id for t in stored.tests if t.result is not None and t.result.leaking]
        other = [f"{t.id} ({t.outcome})" for t in stored.tests if t.result is None]
        print(f"stored baseline {path} ({len(stored.tests)} tests, {len(leaking)} leaking)")
        for tid in leaking:
            print(f"  note: known leak kept in the baseline: {tid}")
        for desc in other:
            print(f"  note: no check result, nothing to compare later: {desc}")
        return exit_codes.OK
