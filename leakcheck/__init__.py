"""leakcheck: find memory and resource leaks by running a step many times.

Decide cheaply whether repeated runs grow memory or leave handles behind,
then say where. See :func:`check` for the API and the ``leak`` pytest marker.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import check, check_async
from .config import Settings
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
    "Settings",
    "TestRecord",
    "ToolMissingError",
    "Verdict",
    "__version__",
    "check",
    "check_async",
    "load_results",
]
