"""The Python API: :func:`check` and :func:`check_async`, no pytest needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from .config import OPTIONS, Settings, resolve
from .errors import ConfigError
from .results import CheckResult
from .runner import CheckContext, run, run_async

__all__ = ["check", "check_async", "settings_from"]

Callback = Callable[..., Any]


def settings_from(base: Settings | None, kwargs: Mapping[str, object]) -> Settings:
    """Settings from ``check()`` keywords (same names and parsing as the marker), over ``base``."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    resolved = resolve(given, marker_source="check()")
    if base is None:
        return resolved
    names = {o.name for o in OPTIONS}
    return base.replace(**{k: getattr(resolved, k) for k in given if k in names})


def _context(report: str | Path | None, name: str, settings: Settings) -> CheckContext:
    if report is None:
        return CheckContext()
    # With a report, an explicit attribution mode runs the window even for a clean step.
    explicit = settings.attribution != "auto"
    return CheckContext(
        capture_dir=capture_dir_for(Path(report), name), always_attribute=explicit, report_dir=Path(report)
    )


def capture_dir_for(report_dir: Path, test_id: str) -> Path:
    """Where the flamegraph and captures of ``test_id`` go under a report directory."""
    from .report.html import safe_name

    return report_dir / "tests" / safe_name(test_id)


def check(
    step: Callback,
    *,
    setup: Callback | None = None,
    teardown: Callback | None = None,
    name: str = "",
    settings: Settings | None = None,
    report: str | Path | None = None,
    **options: Any,
) -> CheckResult:
    """Run ``step`` many times and judge whether memory or handles grow.

    ``step``, ``setup`` and ``teardown`` may each be sync or ``async def``;
    async ones all run on one event loop that leakcheck creates and closes
    (inside a running loop, use :func:`check_async`). When ``setup`` is given,
    its return value is passed to ``step`` and ``teardown``.

    ``options`` are the marker's keywords: ``iterations``, ``warmup``,
    ``max_growth`` ("512 B", "1 KiB", a number of bytes), ``probes``,
    ``limits`` and the rest of :class:`~leakcheck.config.Settings`; a bad
    one raises :class:`~leakcheck.ConfigError` naming it. With ``report=DIR``
    the flamegraph of what leaked is kept under DIR (the attribution window
    runs when growth is suspected, or always with an explicit ``attribution``
    mode); write the whole report with :func:`leakcheck.report.write_report`.

    A step that raises stops the check with :class:`~leakcheck.ScenarioError`,
    the step's exception as its ``__cause__``.
    """
    cfg, label, context = _prepare(step, setup, teardown, name, settings, report, options)
    return run(step, settings=cfg, name=label, setup=setup, teardown=teardown, context=context)


async def check_async(
    step: Callback,
    *,
    setup: Callback | None = None,
    teardown: Callback | None = None,
    name: str = "",
    settings: Settings | None = None,
    report: str | Path | None = None,
    **options: Any,
) -> CheckResult:
    """:func:`check` on the running event loop, for callers already inside one."""
    cfg, label, context = _prepare(step, setup, teardown, name, settings, report, options)
    return await run_async(step, settings=cfg, name=label, setup=setup, teardown=teardown, context=context)


def _prepare(
    step: Callback,
    setup: Callback | None,
    teardown: Callback | None,
    name: str,
    settings: Settings | None,
    report: str | Path | None,
    options: Mapping[str, object],
) -> tuple[Settings, str, CheckContext]:
    """Validate the callables and resolve settings, label and context, for both entry points."""
    _check_callables(step, setup, teardown)
    cfg = settings_from(settings, options)
    label = name or getattr(step, "__qualname__", "step")
    return cfg, label, _context(report, label, cfg)


def _check_callables(step: object, setup: object, teardown: object) -> None:
    for label, fn in (("step", step), ("setup", setup), ("teardown", teardown)):
        if fn is not None and not callable(fn):
            raise ConfigError(label, fn, "expected a callable (a function, sync or async)", "check()")
