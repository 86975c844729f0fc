"""Native leaks: run a leak test under valgrind memcheck and keep what grows per iteration.

The test is run twice in child processes under memcheck (in parallel by default), once
with N and once with 2N iterations after the same warm-up.  Loss records are matched
across the two runs by their native stack; only those that grow with the iteration
count are reported, as ``(lost(2N) - lost(N)) / N`` bytes per iteration.

The parts, one job each:

* :mod:`.errors` — what stops a run before it starts (valgrind missing, a bad target);
* :mod:`.targets` — what the child runs: ``FILE.py:FUNCTION`` or a pytest node id;
* :mod:`.running` — the two memcheck children and :func:`run_valgrind`;
* :mod:`.memcheck_xml` — valgrind's XML output as typed records;
* :mod:`.analysis` — which loss records grow between the runs;
* :mod:`.results` — :class:`GrowingRecord` and :class:`ValgrindReport`;
* :mod:`.driver` — the child for callables, ``python -m leakcheck.valgrind.driver``.

Entry points: :func:`run_valgrind` (library and pytest plugin) and the ``leakcheck
valgrind`` subcommand (:mod:`leakcheck.cli.valgrind`, also ``scripts/valgrind.sh``).
"""

from __future__ import annotations

from .analysis import compare_runs
from .errors import INSTALL_HINT, TargetError, ValgrindError, ValgrindNotFoundError
from .memcheck_xml import Frame, LossRecord, MemcheckRun, parse_memcheck_xml
from .results import DEFAULT_MIN_BYTES, DEFAULT_TOP, GrowingRecord, ValgrindReport
from .running import (
    CHILD_ENV_FLAG,
    DEFAULT_ITERATIONS,
    DEFAULT_TIMEOUT,
    DEFAULT_WARMUP,
    default_suppressions,
    find_valgrind,
    run_valgrind,
)
from .targets import Target, parse_target

__all__ = [
    "CHILD_ENV_FLAG",
    "DEFAULT_ITERATIONS",
    "DEFAULT_MIN_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOP",
    "DEFAULT_WARMUP",
    "INSTALL_HINT",
    "Frame",
    "GrowingRecord",
    "LossRecord",
    "MemcheckRun",
    "Target",
    "TargetError",
    "ValgrindError",
    "ValgrindNotFoundError",
    "ValgrindReport",
    "compare_runs",
    "default_suppressions",
    "find_valgrind",
    "parse_memcheck_xml",
    "parse_target",
    "run_valgrind",
]
