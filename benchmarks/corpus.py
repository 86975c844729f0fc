"""The benchmark corpus: one small module per case in ``benchmarks/cases/``.

A case module defines ``step`` (sync or ``async def``), optionally ``setup()``
(whose return value is passed to ``step`` and ``teardown``) and
``teardown(state)``, and its ground truth:

- ``LEAKS``: ``True`` when the step leaks, ``False`` for a clean look-alike;
- ``RESOURCE``: what leaks (one of :data:`RESOURCES`), ``None`` when clean;
- ``DESCRIPTION``: one line for people, naming the real-world pattern.
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

__all__ = ["CASES_DIR", "RESOURCES", "Case", "Driver", "discover", "load_case"]

CASES_DIR = Path(__file__).resolve().parent / "cases"
RESOURCES = ("py_heap", "native_heap", "mapped", "fds", "threads", "tasks", "children", "files", "unclosed")


@dataclass(frozen=True)
class Case:
    """One corpus case and its ground truth."""

    name: str
    path: Path
    leaks: bool
    resource: str | None
    description: str
    module: ModuleType

    @property
    def setup(self) -> Callable[..., Any] | None:
        return getattr(self.module, "setup", None)

    @property
    def step(self) -> Callable[..., Any]:
        return self.module.step  # type: ignore[no-any-return]

    @property
    def teardown(self) -> Callable[..., Any] | None:
        return getattr(self.module, "teardown", None)

    @property
    def is_async(self) -> bool:
        return any(inspect.iscoroutinefunction(f) for f in (self.setup, self.step, self.teardown) if f)


class CaseError(Exception):
    """A case module that does not follow the corpus contract."""


def load_case(path: str | Path) -> Case:
    """Import the case module at ``path`` and check its ground truth."""
    path = Path(path).resolve()
    name = path.stem
    spec = importlib.util.spec_from_file_location(f"benchmark_case_{name}", path)
    if spec is None or spec.loader is None:
        raise CaseError(f"{path}: not importable")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    leaks = getattr(module, "LEAKS", None)
    resource = getattr(module, "RESOURCE", "missing")
    description = getattr(module, "DESCRIPTION", None)
    if not isinstance(leaks, bool):
        raise CaseError(f"{path}: LEAKS must be True or False, got {leaks!r}")
    if leaks and resource not in RESOURCES:
        raise CaseError(f"{path}: a leaking case needs RESOURCE in {RESOURCES}, got {resource!r}")
    if not leaks and resource is not None:
        raise CaseError(f"{path}: a clean case has RESOURCE = None, got {resource!r}")
    if not isinstance(description, str) or not description:
        raise CaseError(f"{path}: DESCRIPTION must be a non-empty string")
    if not callable(getattr(module, "step", None)):
        raise CaseError(f"{path}: no step() function")
    return Case(name, path, leaks, resource, description, module)


def case_paths(pattern: str = "*") -> list[Path]:
    """Paths of the case modules whose name matches ``pattern`` (fnmatch, comma-separated)."""
    patterns = [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    return [
        p
        for p in sorted(CASES_DIR.glob("*.py"))
        if not p.name.startswith("_") and any(fnmatch.fnmatch(p.stem, pat) for pat in patterns)
    ]


def discover(pattern: str = "*") -> list[Case]:
    """All cases whose module name matches ``pattern``."""
    return [load_case(p) for p in case_paths(pattern)]


class Driver:
    """Runs a case's setup/step/teardown by hand, sync or async, on one event loop."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.loop = asyncio.new_event_loop() if case.is_async else None
        self.state: Any = None
        self.has_state = case.setup is not None

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        result = fn(*args)
        if inspect.isawaitable(result):
            assert self.loop is not None
            return self.loop.run_until_complete(result)
        return result

    def open(self) -> None:
        if self.case.setup is not None:
            self.state = self._call(self.case.setup)

    def run(self, n: int) -> None:
        """Run the step ``n`` times (one event-loop entry for all of them when async)."""
        step = self.case.step
        args = (self.state,) if self.has_state else ()
        if inspect.iscoroutinefunction(step):
            assert self.loop is not None

            async def many() -> None:
                for _ in range(n):
                    await step(*args)

            self.loop.run_until_complete(many())
        else:
            for _ in range(n):
                step(*args)

    def close(self) -> None:
        if self.case.teardown is not None:
            args = (self.state,) if self.has_state else ()
            self._call(self.case.teardown, *args)
        if self.loop is not None:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.loop = None
