"""The ``leak`` marker's signature, the ``--leak-*`` options and ini keys, and plugin registration."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ..config import OPTIONS, add_options
from ..suite import (
    DEFAULT_BUDGET,
)
from .session import LeakPlugin

__all__ = ["leak", "pytest_addoption", "pytest_configure"]


def leak(
    *,
    iterations: int | str | None = None,
    warmup: int | str | None = None,
    max_iterations: int | str | None = None,
    extend_time: float | str | None = None,
    fill_iterations: int | str | None = None,
    min_time: float | str | None = None,
    sample_every: int | str | None = None,
    probes: Sequence[str] | str | None = None,
    max_growth: float | str | None = None,
    limits: Mapping[str, float | str] | str | None = None,
    alpha: float | str | None = None,
    grace: float | str | None = None,
    timeout: float | str | None = None,
    allow_threads: Sequence[str] | str | None = None,
    allow_tasks: Sequence[str] | str | None = None,
    allow_files: Sequence[str] | str | None = None,
    allow_unclosed: Sequence[str] | str | None = None,
    attribution: str | None = None,
    attribution_iterations: int | str | None = None,
    tracemalloc_frames: int | str | None = None,
    user_paths: Sequence[str] | str | None = None,
    profile: str | None = None,
    mode: str | None = None,
) -> None:
    """Run the test body as one iteration, many times, and fail if memory or handles grow.

    Function-scoped fixtures are set up once around all iterations. Each
    keyword is the ``--leak-*`` setting of the same name (see
    :data:`leakcheck.config.OPTIONS` for what each means); one left out, or
    ``None``, lets the command line, then the ini file, then the default
    decide. The keywords must be the marker options of ``OPTIONS``, in their
    order: ``tests/test_plugin_marker.py`` checks that they agree.
    """


def _marker_help() -> str:
    """The ``markers`` line for ``leak``, generated from its signature and docstring."""
    kwargs = ", ".join(f"{name}=..." for name in inspect.signature(leak).parameters)
    summary = (inspect.getdoc(leak) or "").splitlines()[0]
    return f"leak({kwargs}): {summary}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--leak-*`` flags and ``leak_*`` ini keys from the one option table."""
    group = parser.getgroup("leakcheck", "leak checks (leakcheck)")
    add_options(group.addoption)
    group.addoption(
        "--leak-report",
        dest="leak_report",
        default=None,
        metavar="DIR",
        help="Write an HTML report, flamegraphs and results.json for the leak tests to DIR",
    )
    group.addoption(
        "--leak-valgrind",
        dest="leak_valgrind",
        action="store_true",
        default=None,
        help="Run each selected leak test under valgrind memcheck in a child process",
    )
    _add_suite_options(group.addoption)
    for option in OPTIONS:
        parser.addini(option.ini, help=option.help, default=None)
    parser.addini("leak_report", help="Default directory for the leak report", default=None)
    parser.addini("leak_flamegraphs", default=None, help="Flamegraphs in the report (as --leak-flamegraphs)")
    parser.addini(
        "leak_all", type="bool", default=False, help="Judge every collected test as a leak test (as --leak-all)"
    )
    parser.addini("leak_budget", default=None, help="Seconds per leak test (as --leak-budget)")
    parser.addini(
        "leak_exclude", type="linelist", default=[], help="Node id patterns (fnmatch) --leak-all leaves alone"
    )


def _add_suite_options(addoption: Any) -> None:
    """Options of a whole-suite run: --leak-all, --leak-budget, --leak-shard, --leak-exclude."""
    addoption(
        "--leak-all",
        dest="leak_all",
        action="store_true",
        default=None,
        help="Judge every collected test as a leak test, not only those marked leak "
        "(except tests marked no_leak or matching leak_exclude)",
    )
    addoption(
        "--leak-budget",
        dest="leak_budget",
        default=None,
        metavar="SECONDS",
        help=f"Seconds a leak test may take; iterations are scaled down to fit, never below what a verdict "
        f"needs (default {DEFAULT_BUDGET:g} under --leak-all, else none; 0: none)",
    )
    addoption(
        "--leak-flamegraphs",
        dest="leak_flamegraphs",
        default=None,
        metavar="N",
        help="Flamegraphs in --leak-report: the N worst leaking tests get one (default 20; 'all' for every "
        "one); the others keep their memray capture for `leakcheck report DIR --flamegraphs all`",
    )
    addoption(
        "--leak-shard",
        dest="leak_shard",
        default=None,
        metavar="I/N",
        help="Run only shard I of N (a stable hash of each node id), e.g. 2/4 in the second of four CI jobs",
    )
    addoption(
        "--leak-exclude",
        dest="leak_exclude",
        action="append",
        default=None,
        metavar="PATTERN",
        help="Node id pattern (fnmatch) that --leak-all leaves alone; repeatable, adds to ini leak_exclude",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the plugin object holding this session's state."""
    config.addinivalue_line("markers", _marker_help())
    config.addinivalue_line("markers", "no_leak: never judge this test as a leak test under --leak-all")
    if config.pluginmanager.has_plugin("leakcheck-session"):
        return
    config.pluginmanager.register(LeakPlugin(config), "leakcheck-session")
