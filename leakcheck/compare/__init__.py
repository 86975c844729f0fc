"""Compare two runs: which leak tests regressed, improved, appeared or disappeared.

A measure *regresses* when its growth per iteration, or its peak over the run,
rose by more than ``threshold`` (relative) **and** by more than ``min_effect``
times the finding's limit (absolute, so 0.001 → 0.002 blocks/iteration is not
news), **and** the rise is statistically significant: a one-sided Mann–Whitney
U test on the per-iteration deltas of the two series says the current deltas
are larger, at level ``alpha``. A test regresses when a measure regresses, when
a measure (or the whole test) that was clean now leaks, or when it leaves more
handles behind than before. Noise alone moves neither the effect size past its
floor nor the test past its level, so it does not flag.

:func:`compare` works on :class:`~leakcheck.results.RunResults`; the
``leakcheck compare`` subcommand is :mod:`leakcheck.cli.compare`. The
statistics live in :mod:`.stats`, the result types and :func:`compare` in
:mod:`.core` and the reports in :mod:`.format`.
"""

from __future__ import annotations

from .core import IMPROVED as IMPROVED
from .core import NOT_COMPARED as NOT_COMPARED
from .core import REGRESSED as REGRESSED
from .core import UNCHANGED as UNCHANGED
from .core import (
    Comparison,
    MeasureDelta,
    TestDelta,
    compare,
)
from .format import format_markdown, format_text
from .stats import MIN_SAMPLES as MIN_SAMPLES
from .stats import TARGET_DELTAS as TARGET_DELTAS
from .stats import (
    MannWhitney,
    delta_window,
    mann_whitney_u,
    per_iteration_deltas,
    series_peak,
)
from .stats import holm as holm

__all__ = [
    "Comparison",
    "MannWhitney",
    "MeasureDelta",
    "TestDelta",
    "compare",
    "delta_window",
    "format_markdown",
    "format_text",
    "mann_whitney_u",
    "per_iteration_deltas",
    "series_peak",
]
