"""The exceptions leakcheck raises.

Every error keeps its context as attributes, so callers (the pytest plugin,
the CLI) can phrase their own message without parsing ours.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "LeakcheckError",
    "ResultsFileError",
    "ScenarioError",
    "StepTimeoutError",
    "ToolMissingError",
]


class LeakcheckError(Exception):
    """Base class of every error leakcheck raises on purpose."""

    __module__ = "leakcheck"


class ConfigError(LeakcheckError, ValueError):
    """A setting has a value leakcheck cannot use.

    ``name`` is the setting (``"iterations"``), ``value`` what was given and
    ``source`` where it came from (``"marker on tests/test_x.py::test_y"``,
    ``"--leak-iterations"``, ``"ini leak_iterations"``, ``"check()"``).
    """

    __module__ = "leakcheck"

    def __init__(self, name: str, value: object, problem: str, source: str = "") -> None:
        self.name = name
        self.value = value
        self.problem = problem
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"{name}={value!r}{where}: {problem}")


class ScenarioError(LeakcheckError):
    """The code under test raised; ``__cause__`` holds the original exception.

    ``phase`` is ``"setup"``, ``"warm-up step"``, ``"step"`` or ``"teardown"``
    and ``iteration`` the iteration that raised, counted within its phase
    (``None`` outside the step).
    """

    __module__ = "leakcheck"

    def __init__(self, phase: str, iteration: int | None, exc: BaseException) -> None:
        self.phase = phase
        self.iteration = iteration
        at = f" in iteration {iteration}" if iteration is not None else ""
        super().__init__(f"the {phase} raised{at}: {type(exc).__name__}: {exc}")


class ToolMissingError(LeakcheckError):
    """An optional tool (memray, valgrind, chromium) is not available.

    ``tool`` names it and ``hint`` says how to get it.
    """

    __module__ = "leakcheck"

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        self.hint = hint
        super().__init__(f"{tool} is not available: {hint}")


class ResultsFileError(LeakcheckError):
    """A results file cannot be read: missing, truncated, not JSON, or of another schema."""

    __module__ = "leakcheck"

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class StepTimeoutError(LeakcheckError):
    """A check ran past its ``timeout``: the step (or setup, teardown) hung.

    ``name`` is the check, ``phase`` what was running (``"step"``, ``"warm-up step"``,
    ``"setup"``...), ``iteration`` the step's call that hung (warm-up included;
    ``None`` outside the step), ``seconds`` the limit, and ``stacks`` every
    thread's stack, the hung thread's first, then an async step's pending tasks.
    """

    __module__ = "leakcheck"

    def __init__(self, name: str, phase: str, iteration: int | None, seconds: float, stacks: str) -> None:
        self.name = name
        self.phase = phase
        self.iteration = iteration
        self.seconds = seconds
        self.stacks = stacks
        where = f"at iteration {iteration} ({phase})" if iteration is not None else f"in the {phase}"
        head = (
            f"{name}: hung {where} after {seconds:g} s; "
            "if it only needs longer, raise the limit with timeout= / --leak-timeout (0: none)"
        )
        super().__init__(f"{head}\n{stacks}".rstrip())
