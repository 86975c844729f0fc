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
import sys
from typing import Protocol

from .. import exit_codes
from ..errors import LeakcheckError

__all__ = ["Command", "CommandError", "add_command", "run_command"]


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
    parser.set_defaults(func=functools.partial(run_command, command))
