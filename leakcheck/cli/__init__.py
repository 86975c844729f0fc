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
through; 130 interrupted (Ctrl-C).  Errors print one line,
``leakcheck <command>: error: <message>``, on stderr (:mod:`.base`).  SIGTERM unwinds
like Ctrl-C, so temporary folders and valgrind's children go on every path.  Only this
package imports argparse: the library modules behind it take typed parameters.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from .. import exit_codes
from .._version import __version__
from ..exit_codes import BAD_INPUT, CRASHED, FOUND, OK
from ..hints import close_matches
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
    "INTERRUPTED",
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


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (the fix: ``--help``) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(exit_codes.BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (the subcommands' parsers are of the same class)."""
    parser = _Parser(prog="leakcheck", description="Find memory and resource leaks by repetition.")
    parser.add_argument("--version", action="version", version=f"leakcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        add_command(sub.add_parser(command.name, help=command.help), command)
    return parser


def _unrecognized(parser: argparse.ArgumentParser, unknown: list[str]) -> NoReturn:
    """argparse's "unrecognized arguments", from the subcommand, with the closest option it has."""
    options = [o for action in parser._actions for o in action.option_strings]
    hints = []
    for arg in unknown:
        close = close_matches(arg.split("=", 1)[0], options, cutoff=0.7) if arg.startswith("-") else []
        if close:
            hints.append(f"did you mean {close[0]}?")
    parser.error(f"unrecognized arguments: {' '.join(unknown)}" + "".join(f"; {h}" for h in hints))


#: The status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def _terminated(signum: int, frame: FrameType | None) -> None:
    # Unwind, so every ``finally`` runs (temp folders, valgrind's children), then exit 128 + 15.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leakcheck`` and ``python -m leakcheck``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if args_list[:1] == [RunCommand.name] and args_list[1:] not in (["-h"], ["--help"]):
        # Everything after ``run`` is pytest's, options first included (``run -n 2``),
        # which argparse's REMAINDER would reject as unknown options of ``leakcheck``.
        args = parser.parse_args([RunCommand.name])
        args.pytest_args = args_list[1:]
    else:
        args, unknown = parser.parse_known_args(args_list)
        if unknown:
            _unrecognized(getattr(args, "leakcheck_parser", parser), unknown)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"leakcheck {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
