"""The exit statuses of every ``leakcheck`` command, defined once.

The CLI maps each outcome to one of these; :meth:`leakcheck.compare.Comparison.exit_status`
uses them too, which is why they live outside :mod:`leakcheck.cli` (a library module
should not import the command line).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BAD_INPUT", "CRASHED", "FOUND", "OK"]

#: Clean: no leak, no regression, or the file was written.
OK: Final = 0
#: A leak or a regression was found (``leaking``, ``REGRESSED``).
FOUND: Final = 1
#: Bad arguments, an unreadable input, an unwritable output, or a missing tool.
BAD_INPUT: Final = 2
#: No verdict: valgrind's child crashed, timed out or failed, or a checked step hung past its timeout.
CRASHED: Final = 3
