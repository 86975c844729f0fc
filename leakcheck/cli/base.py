"""What every subcommand is, and the one place its errors become an exit status and a message.

Modelled on memray's ``commands/``: each subcommand is a small object behind the
:class:`Command` protocol, in a module of its own.  A command raises the package's
error base, :class:`~leakcheck.LeakcheckError` (a missing tool, an unreadable
results file, a bad setting, a valgrind target that cannot run) or, for what the
library does not raise itself (an output file that cannot be written),
:class:`CommandError`; :func:`run_command` prints ``leakcheck <command>: error:
<message>`` to stderr, without a traceback, and returns
:data:`~leakcheck.exit_codes.BAD_INPUT`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import exit_codes
from ..errors import LeakcheckError, ResultsFileError

if TYPE_CHECKING:
    from ..results import RunResults

__all__ = ["Command", "CommandError", "add_command", "load_results_arg", "run_command"]


class Command(Protocol):
    """One ``leakcheck`` subcommand: its name, its one-line help, its arguments and its run."""

    #: The subcommand's name on the command line (``"compare"``).
    name: str
    #: The one-line help shown by ``leakcheck --help``.
    help: str

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """Add the subcommand's arguments (and description) to ``parser``."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return an exit status from :mod:`leakcheck.exit_codes`.

        Failures are raised as :class:`~leakcheck.LeakcheckError`, not printed.
        """


class CommandError(LeakcheckError):
    """A command failed in a way the library does not raise itself (an output cannot be written)."""

    __module__ = "leakcheck.cli"


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Run ``command`` with ``args``; its errors become one stderr line and ``BAD_INPUT``.

    The message names the command as ``args.leakcheck_prog`` when set (``"baseline
    update"``), else by ``command.name``.
    """
    prog = getattr(args, "leakcheck_prog", None) or command.name
    try:
        return int(command.run(args))
    except LeakcheckError as exc:
        print(f"leakcheck {prog}: error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT


def add_command(parser: argparse.ArgumentParser, command: Command) -> None:
    """Give ``parser`` the arguments of ``command``; ``args.func(args)`` then runs it."""
    command.prepare_parser(parser)
    # leakcheck_parser: the parser that names an unrecognized argument's closest option.
    parser.set_defaults(func=functools.partial(run_command, command), leakcheck_parser=parser)


def load_results_arg(path: str) -> RunResults:
    """A results file named on the command line; a report folder stands for its ``results.json``.

    A missing file's error says what to pass instead.
    """
    from ..report.files import load_run

    folder = Path(path)
    if folder.is_dir() and (folder / "results.json").is_file():
        return load_run(folder / "results.json")
    try:
        return load_run(path)
    except ResultsFileError as exc:
        if os.path.exists(path) and not folder.is_dir():
            raise
        raise ResultsFileError(
            exc.path,
            f"{'a folder without results.json' if folder.is_dir() else 'no such file'}; pass the "
            "results.json that --leak-report DIR (or --report DIR) wrote, or DIR itself",
        ) from None
