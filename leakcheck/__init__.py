"""leakcheck: find memory and resource leaks by running a step many times.

Decide cheaply whether repeated runs grow memory or leave handles behind,
then say where. See :func:`check` for the API and the ``leak`` pytest marker.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ConfigError,
    LeakcheckError,
    LeakcheckWarning,
    ResultsFileError,
    ScenarioError,
    ToolMissingError,
)
from .results import (
    AllocationSite,
    Attribution,
    CheckResult,
    Evidence,
    Finding,
    LeakedHandle,
    RunResults,
    Series,
    TestRecord,
    Verdict,
    load_results,
)

__all__ = [
    "__version__",
    "AllocationSite",
    "Attribution",
    "CheckResult",
    "ConfigError",
    "Evidence",
    "Finding",
    "LeakcheckError",
    "LeakcheckWarning",
    "LeakedHandle",
    "ResultsFileError",
    "RunResults",
    "ScenarioError",
    "Series",
    "TestRecord",
    "ToolMissingError",
    "Verdict",
    "load_results",
]
