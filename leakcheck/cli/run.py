"""``leakcheck run``: the pytest leak suite, ``pytest -m leak`` over ``scenarios/`` by default."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .base import CommandError

__all__ = ["RunCommand"]


#: pytest's options whose value follows as the next argument (``-k EXPR``, ``-n 2``), not a path.
_TAKES_VALUE = frozenset(
    {
        *("-k", "-m", "-n", "-p", "-c", "-o", "-W", "-r"),
        *("--maxfail", "--rootdir", "--confcutdir", "--basetemp", "--deselect", "--ignore", "--ignore-glob"),
        *("--dist", "--tb", "--durations", "--junit-xml", "--log-level", "--import-mode", "--capture"),
        "--numprocesses",
    }
)


#: leakcheck's own flags that take no value; every other ``--leak-*`` option does.
_LEAK_FLAGS = frozenset({"--leak-all", "--leak-valgrind"})


def _takes_value(option: str) -> bool:
    if option in _TAKES_VALUE:
        return True
    return option.startswith("--leak-") and "=" not in option and option not in _LEAK_FLAGS


def _paths(args: list[str]) -> list[str]:
    """The test paths among pytest's arguments: not options, nor the values of options such as ``-k``."""
    paths = []
    previous = ""
    for arg in args:
        if not arg.startswith("-") and not _takes_value(previous):
            paths.append(arg)
        previous = arg
    return paths


class RunCommand:
    """Run ``python -m pytest -m leak`` with the given arguments; pytest's status passes through."""

    name = "run"
    help = "Run the pytest leak suite (default: scenarios/); extra args go to pytest"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """Everything after ``run`` goes to pytest."""
        parser.add_argument(
            "pytest_args",
            nargs=argparse.REMAINDER,
            help="Arguments for pytest, e.g. -n auto --leak-report=DIR",
        )

    def run(self, args: argparse.Namespace) -> int:
        """Print the pytest command, run it, return its status."""
        extra = list(args.pytest_args)
        if extra and extra[0] == "--":
            extra = extra[1:]
        paths = _paths(extra)
        if not paths and not Path("scenarios").is_dir():
            raise CommandError(
                f"no scenarios/ folder in {Path.cwd()}; pass the tests to run, "
                "e.g. 'leakcheck run tests/' (any pytest arguments follow 'run')"
            )
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "leak",
            *([] if paths else ["scenarios/"]),
            *extra,
        ]
        print("+ " + " ".join(command), file=sys.stderr)
        return subprocess.call(command)
