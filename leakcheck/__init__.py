"""leakcheck: find memory and resource leaks by running a step many times.

Decide cheaply whether repeated runs grow memory or leave handles behind,
then say where. See :func:`check` for the API and the ``leak`` pytest marker.
"""

from __future__ import annotations

from ._version import __version__
from .api import check, check_async
from .config import Settings
from .errors import (
    ConfigError,
    LeakcheckError,
    ResultsFileError,
    ScenarioError,
    StepTimeoutError,
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
    "LeakedHandle",
    "ResultsFileError",
    "RunResults",
    "ScenarioError",
    "Series",
    "Settings",
    "StepTimeoutError",
    "TestRecord",
    "ToolMissingError",
    "Verdict",
    "__version__",
    "check",
    "check_async",
    "load_results",
]
