"""The ``leakcheck`` command: check a callable, run the leak suite, and work with results.

Subcommands, one module each::

    leakcheck check MODULE:FUNC [--setup M:F] [--teardown M:F] [--leak-* ...] [--report DIR]
    leakcheck run [PYTEST ARGS...]        pytest -m leak over scenarios/ (or the given paths)
    leakcheck report DIR                  re-render the HTML report from DIR/results.json
    leakcheck flamegraph CAPTURE -o OUT   memray's leaks flamegraph of one capture
    leakcheck compare BASELINE CURRENT    regressions between two results.json files
    leakcheck baseline ...                store or show a baseline
    leakcheck trend RESULTS...            growth per iteration across runs, as HTML
    leakcheck valgrind TARGET [N]         memcheck a leak test, losses per iteration

Exit status (:mod:`leakcheck.exit_codes`): 0 clean, 1 leaking or regressed, 2 bad
input (arguments, files, a missing tool), 3 valgrind's child crashed, timed out or
failed, or the step of ``check`` hung past its timeout; ``leakcheck run`` passes pytest's status
through.  Errors print one line,
``leakcheck <command>: error: <message>``, on stderr (:mod:`.base`).  Only this
package imports argparse: the library modules behind it take typed parameters.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .._version import __version__
from ..exit_codes import BAD_INPUT, CRASHED, FOUND, OK
from .base import Command, CommandError, add_command, run_command
from .baseline import BaselineCommand
from .check import CheckCommand
from .compare import CompareCommand
from .flamegraph import FlamegraphCommand
from .report import ReportCommand
from .run import RunCommand
from .trend import TrendCommand
from .valgrind import ValgrindCommand

__all__ = [
    "BAD_INPUT",
    "COMMANDS",
    "CRASHED",
    "FOUND",
    "OK",
    "Command",
    "CommandError",
    "add_command",
    "build_parser",
    "main",
    "run_command",
]

#: Every subcommand, in the order ``leakcheck --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    CheckCommand(),
    RunCommand(),
    ReportCommand(),
    FlamegraphCommand(),
    CompareCommand(),
    BaselineCommand(),
    TrendCommand(),
    ValgrindCommand(),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="leakcheck", description="Find memory and resource leaks by repetition.")
    parser.add_argument("--version", action="version", version=f"leakcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        add_command(sub.add_parser(command.name, help=command.help), command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leakcheck`` and ``python -m leakcheck``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
