"""Whole-suite runs: ``--leak-all`` selection, budgets, shards, the plain first call, unittest
iterations, and per-test records kept small (spilled to disk, a summary kept)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..aio import repeat
from ..config import Settings
from ..crashguard import VerdictGuard
from ..errors import ConfigError, ScenarioError, StepTimeoutError
from ..progress import ProgressLine
from ..results import (
    SCHEMA_VERSION,
    CheckResult,
    RunResults,
    TestRecord,
)
from ..runner import CheckContext, run, run_async
from ..suite import (
    DEFAULT_BUDGET,
    FlamegraphQuota,
    TestSummary,
    excluded,
    fit_budget,
    in_shard,
    iteration_of,
    not_repeatable_detail,
    parse_budget,
    parse_shard,
    summarize,
)
from .helpers import (
    _IMPLICIT,
    _STATUS,
    _flamegraphs,
    _ini,
    _raise_cause,
    _relative,
    _unclosed_counted,
)


class _Checked:
    """What the body of :meth:`SuiteRuns._checking` left: the check's result, if it gave one."""

    __slots__ = ("result", "started")

    def __init__(self, started: float) -> None:
        self.started = started  #: ``time.perf_counter()`` when the check began
        self.result: CheckResult | None = None


class SuiteRuns:
    """The part of :class:`~leakcheck.plugin.session.LeakPlugin` that runs a test as a check within a budget."""

    config: pytest.Config
    report_dir: Path | None
    is_worker: bool
    guard: VerdictGuard
    leak_all: bool
    exclude: tuple[str, ...]
    budget: float
    shard: tuple[int, int] | None
    summaries: list[TestSummary]
    pending: dict[str, TestRecord]
    spill: Path | None
    progress: ProgressLine | None
    flamegraph_quota: FlamegraphQuota | None

    def _judge(self, item: pytest.Item, result: CheckResult, seconds: float) -> None:
        raise NotImplementedError  # LeakPlugin's: a verdict becomes the test's outcome

    # -- whole-suite runs: --leak-all, budgets, shards, records kept small ----

    def _init_suite(self, config: pytest.Config) -> None:
        self.leak_all = bool(config.getoption("leak_all") or config.getini("leak_all"))
        self.exclude = tuple(config.getini("leak_exclude") or ()) + tuple(config.getoption("leak_exclude") or ())
        try:
            raw = config.getoption("leak_budget")
            source = "--leak-budget"
            if raw is None and _ini(config, "leak_budget") is not None:
                raw, source = _ini(config, "leak_budget"), "ini leak_budget"
            self.budget = parse_budget(raw, source) if raw is not None else (DEFAULT_BUDGET if self.leak_all else 0.0)
            shard = config.getoption("leak_shard")
            self.shard = parse_shard(shard) if shard else None
            self.flamegraphs = _flamegraphs(config)
            #: this process's worst leaks so far, which keep a memray capture (None: every leak keeps one)
            self.flamegraph_quota = None if self.flamegraphs is None else FlamegraphQuota(self.flamegraphs)
        except ConfigError as exc:
            raise pytest.UsageError(f"leakcheck: {exc}") from None
        #: one small summary per finished leak test; full records go to the spill file
        self.summaries: list[TestSummary] = []
        #: full records of tests whose teardown has not been reported yet
        self.pending: dict[str, TestRecord] = {}
        self.spill: Path | None = None
        self.progress: ProgressLine | None = None
        if self.report_dir is not None and not self.is_worker:
            self.spill = self.report_dir / f".leakcheck-records-{os.getpid()}.jsonl"
            self.spill.unlink(missing_ok=True)

    def _select(self, items: list[pytest.Item]) -> None:
        """Keep this shard's items; under --leak-all mark every other test function a leak test."""
        if self.shard is not None:
            index, count = self.shard
            keep = [i for i in items if in_shard(i.nodeid, index, count)]
            dropped = [i for i in items if not in_shard(i.nodeid, index, count)]
            if dropped:
                self.config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        if not self.leak_all:
            return
        for item in items:
            if not isinstance(item, pytest.Function) or item.get_closest_marker("leak") is not None:
                continue
            if item.get_closest_marker("no_leak") is not None or excluded(item.nodeid, self.exclude):
                continue
            item.add_marker(pytest.mark.leak)
            item.stash[_IMPLICIT] = True

    def _get_progress(self) -> ProgressLine | None:
        if self.progress is None and not self.is_worker:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            tw = getattr(reporter, "_tw", None)
            if reporter is None or tw is None:
                return None
            raw = getattr(tw, "_file", None)
            isatty = getattr(reporter, "isatty", False)
            # The line is drawn while the test runs, when pytest captures its output: around that capture,
            # or it would land in the test's "Captured stdout" section instead (as pytest's live logging does).
            capman = self.config.pluginmanager.getplugin("capturemanager")
            uncaptured = capman.global_and_fixture_disabled if capman is not None else contextlib.nullcontext

            def draw(text: str) -> None:
                with uncaptured():
                    # Straight to the terminal: pytest's writer would count the backspaces as columns.
                    if raw is None:
                        tw.write(text, flush=True)
                    else:
                        raw.write(text)
                        raw.flush()

            def log(line: str) -> None:
                with uncaptured():
                    # Through pytest's writer, which then knows its column: on a line of its own,
                    # below what pytest left open (or right after the previous progress line).
                    if tw.width_of_current_line:
                        tw.line()
                    tw.write(line, flush=True)

            def resume() -> None:
                # Write again what pytest had on its open line, so that its result (and its [ 50%]
                # column) continues as if the progress lines were not there.
                at = reporter.currentfspath
                with uncaptured():
                    if isinstance(at, str):  # -v: the test's id
                        tw.write(at, flush=True)
                    elif isinstance(at, Path):  # the file's name before its dots
                        tw.write(os.path.relpath(str(at), str(reporter.startpath)) + " ", flush=True)

            tty = bool(isatty() if callable(isatty) else isatty)
            self.progress = ProgressLine(
                draw if tty else log,
                tty=tty,
                verbose=self.config.get_verbosity() > 0,
                # the room left on the cursor's row (pytest's line may have wrapped)
                width=lambda: tw.fullwidth - tw.width_of_current_line % max(tw.fullwidth, 1),
                resume=resume,
            )
        return self.progress

    def _context_for(self, item: pytest.Item, context: CheckContext) -> CheckContext:
        progress = self._get_progress()
        if progress is None:
            return context
        progress.start(item.name)
        draw = progress.update

        def update(done: int, target: int, note: str) -> None:
            if target:  # the baseline's sample comes before the first pass has a target
                draw(done, target, note)

        return dataclasses.replace(context, progress=update)

    def _fit(self, item: pytest.Item, settings: Settings, plain: float) -> Settings | None:
        """``settings`` scaled to the budget, or ``None`` (the test is then reported not judged)."""
        budgeted = fit_budget(settings, plain, self.budget)
        item.stash[_STATUS] = {"plain": plain}
        if budgeted.settings is None:
            item.stash[_STATUS].update(outcome="not_judged", detail=budgeted.reason)
        return budgeted.settings

    def _not_repeatable(self, item: pytest.Item, exc: ScenarioError, settings: Settings, seconds: float) -> None:
        """Record the failing iteration; an explicitly marked test fails with the step's own exception."""
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        call = iteration_of(exc.phase, exc.iteration, settings.warmup)
        detail = not_repeatable_detail(call, cause)
        item.stash[_STATUS].update(outcome="not_repeatable", detail=detail, leak=seconds)
        if not item.stash.get(_IMPLICIT, False):
            item.add_report_section("call", "leakcheck", f"not repeatable: {detail}")
            raise cause from None

    @contextlib.contextmanager
    def _checking(self, item: pytest.Item, settings: Settings) -> Iterator[_Checked]:
        """Around the check of ``item`` (sync, async or unittest), whose result the body stores.

        A hang fails the test; a step that fails in some iteration is recorded as not
        repeatable (and the ``with`` ends without a result); either way the crash guard
        and the progress line are cleared.
        """
        checked = _Checked(time.perf_counter())
        try:
            yield checked
        except StepTimeoutError as exc:
            pytest.fail(str(exc), pytrace=False)
        except ScenarioError as exc:
            self._not_repeatable(item, exc, settings, time.perf_counter() - checked.started)
        finally:
            self.guard.clear(item.nodeid)
            if self.progress is not None:
                self.progress.finish()

    def _judge_checked(self, item: pytest.Item, checked: _Checked) -> None:
        """The verdict of a check that gave a result becomes the test's outcome."""
        if checked.result is not None:
            self._judge(item, checked.result, time.perf_counter() - checked.started)

    def _run_within_budget(
        self, item: pytest.Item, step: Any, settings: Settings, context: CheckContext, plain: float
    ) -> _Checked | None:
        """Fit a sync ``step`` to the budget after a ``plain`` first call and check it; ``None`` if not judged."""
        budgeted = self._fit(item, settings, plain)
        if budgeted is None:
            return None
        with self._checking(item, budgeted) as checked:
            checked.result = run(step, settings=budgeted, name=item.nodeid, context=self._context_for(item, context))
        return checked

    def _check_sync(self, item: pytest.Item, step: Any, settings: Settings, context: CheckContext) -> None:
        """First a plain call (the test's own outcome), then the check within the budget."""
        with _unclosed_counted(settings):
            t0 = time.perf_counter()
            step()
            checked = self._run_within_budget(item, step, settings, context, time.perf_counter() - t0)
        if checked is not None:
            self._judge_checked(item, checked)

    async def _check_async(self, item: pytest.Item, step: Any, settings: Settings, context: CheckContext) -> None:
        """The async twin of :meth:`_check_sync`, on the test's own loop."""
        with _unclosed_counted(settings):
            t0 = time.perf_counter()
            await step()
            budgeted = self._fit(item, settings, time.perf_counter() - t0)
            if budgeted is None:
                return
            with self._checking(item, budgeted) as checked:
                checked.result = await run_async(
                    step, settings=budgeted, name=item.nodeid, context=self._context_for(item, context)
                )
        self._judge_checked(item, checked)

    def _unittest_runtest(self, item: pytest.Function, settings: Settings, context: CheckContext) -> Any:
        """A ``runtest`` for a ``unittest.TestCase`` method: each iteration is setUp, the test, tearDown.

        pytest's own ``runtest`` runs the case with the item as its result
        object, which keeps failures in ``item._excinfo``; a later iteration's
        failure is taken from there and raised, so the check sees it.
        """
        original = item.runtest

        def step() -> None:
            original()
            failures = getattr(item, "_excinfo", None)
            if failures:
                item._excinfo = None  # type: ignore[attr-defined]
                raise failures[0].value

        def runtest() -> None:
            if settings.mode == "repeat":
                _raise_cause(repeat, step, settings.warmup + settings.iterations)
                return
            t0 = time.perf_counter()
            original()
            if getattr(item, "_excinfo", None):
                return  # the first run failed or skipped: pytest reports it as usual
            checked = self._run_within_budget(item, step, settings, context, time.perf_counter() - t0)
            if checked is not None:
                self._judge_checked(item, checked)

        return runtest

    def _record(self, report: pytest.TestReport, record: TestRecord) -> None:
        """Keep the record until the test's teardown is reported, then spill it and keep a summary."""
        self.pending[report.nodeid] = record

    def _finish(self, nodeid: str) -> None:
        record = self.pending.pop(nodeid, None)
        if record is None:
            return
        self.summaries.append(summarize(record))
        if self.spill is not None:
            from ..report.files import thin_record

            record = thin_record(_relative(record, self.report_dir))  # type: ignore[arg-type]
            line = json.dumps(RunResults((record,)).to_dict()["tests"][0])
            with self.spill.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def _spilled(self) -> list[TestRecord]:
        """Every record written to the spill file, read back for the report; the file is removed."""
        for nodeid in list(self.pending):
            self._finish(nodeid)
        if self.spill is None or not self.spill.exists():
            return []
        with self.spill.open(encoding="utf-8") as fh:
            tests = [json.loads(line) for line in fh if line.strip()]
        self.spill.unlink()
        data = {"schema": "leakcheck-results", "schema_version": SCHEMA_VERSION, "tests": tests}
        return list(RunResults.from_dict(data, path=str(self.spill)).tests)
