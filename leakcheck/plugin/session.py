"""The plugin object: per-session state and every hook that needs it (registered in ``pytest_configure``)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..aio import is_async_callable, repeat, repeat_async, run_on_new_loop
from ..config import OPTIONS, Settings, marker_errors, resolve
from ..crashguard import CRASH_NOTE, VerdictGuard
from ..errors import ConfigError
from ..handles import RECORDER, Allowlist, HandleSnapshot, diff_snapshots, settle
from ..results import (
    HANDLE_PROBES,
    CheckResult,
    LeakedHandle,
    RunResults,
    TestRecord,
    describe_handle_groups,
    group_handles,
    handle_count,
)
from ..runner import CheckContext
from ..suite import (
    summary_lines,
)
from .helpers import (
    _BEFORE,
    _HANDLES_REPORTED,
    _OUR_PROPS,
    _PROBE_KINDS,
    _PROP,
    _PROP_HANDLES,
    _PROP_STATUS,
    _RESULT,
    _SETTINGS,
    _STATUS,
    _asyncio_managed,
    _capture_dir,
    _handle_keys,
    _ini,
    _is_unittest,
    _key,
    _raise_cause,
    _ran_elsewhere,
    _ran_elsewhere_async,
)
from .suite_runs import SuiteRuns

__all__ = ["LeakPlugin"]


class LeakPlugin(SuiteRuns):
    """Per-session state and hooks of leakcheck."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cli = {o.name: config.getoption("leak_" + o.name) for o in OPTIONS}
        self.ini = {o.name: _ini(config, o.ini) for o in OPTIONS}
        try:
            self.defaults = resolve(None, self.cli, self.ini)
        except ConfigError as exc:
            raise pytest.UsageError(f"leakcheck: {exc}") from None
        report = config.getoption("leak_report") or _ini(config, "leak_report")
        self.report_dir: Path | None = None
        if report is not None:
            from ..report import ensure_writable_report_dir

            try:
                self.report_dir = ensure_writable_report_dir(Path(str(report)))
            except ConfigError as exc:
                raise pytest.UsageError(f"leakcheck: {exc}") from None
        # Inside the valgrind child the test runs in repeat mode, whatever addopts say.
        self.valgrind = bool(config.getoption("leak_valgrind")) and not os.environ.get("LEAKCHECK_VALGRIND_CHILD")
        self.wide_handles: set[object] = set()
        self.is_worker = hasattr(config, "workerinput")
        shared = getattr(config, "workerinput", {}).get("leakcheck_verdicts")
        # A worker's verdicts go where the controller looks after a crash; alone, a guardian tells.
        capman = config.pluginmanager.getplugin("capturemanager")
        self.guard = VerdictGuard(
            Path(shared) if shared else None,
            guardian=not self.is_worker,
            uncaptured=capman.global_and_fixture_disabled if capman is not None else contextlib.nullcontext,
        )
        self._init_suite(config)

    # -- collection: validate markers, wrap the test functions ------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Check every leak marker now, so a typo fails before anything runs; all bad markers at once."""
        self._select(items)
        problems: list[str] = []
        for item in items:
            marker = item.get_closest_marker("leak")
            if marker is None:
                continue
            if not isinstance(item, pytest.Function):
                problems.append(f"{item.nodeid}: the leak marker applies to test functions only")
                continue
            if marker.args:
                problems.append(
                    f"{item.nodeid}: the leak marker takes keywords only, got positional {marker.args!r}; "
                    "write e.g. @pytest.mark.leak(iterations=300)"
                )
                continue
            source = f"leak marker on {item.nodeid}"
            errors = marker_errors(marker.kwargs, source)
            if not errors:
                try:
                    settings = resolve(marker.kwargs, self.cli, self.ini, marker_source=source)
                except ConfigError as exc:
                    errors = [exc]
            if errors:
                problems.extend(str(e) for e in errors)
                continue
            item.stash[_SETTINGS] = settings
            if settings.mode == "skip":
                item.add_marker(pytest.mark.skip(reason="leak tests skipped (leak mode 'skip')"))
            elif settings.mode in ("check", "repeat") and not self.valgrind:
                if _is_unittest(item):
                    item.runtest = self._unittest_runtest(item, settings, self._base_context(item, settings))  # type: ignore[method-assign]
                else:
                    item.obj = self._wrap(item, settings)
        if len(problems) == 1:
            raise pytest.UsageError(f"leakcheck: {problems[0]}")
        if problems:
            raise pytest.UsageError(
                f"leakcheck: {len(problems)} bad leak markers:\n" + "\n".join(f"  {p}" for p in problems)
            )

    def _base_context(self, item: pytest.Function, settings: Settings) -> CheckContext:
        return CheckContext(
            capture_dir=None if self.report_dir is None else _capture_dir(self.report_dir, item.nodeid),
            always_attribute=self.report_dir is not None and settings.attribution != "auto",
            own_handles=False,  # the setup/teardown hooks below compare handles
            on_verdict=functools.partial(self.guard.record, item.nodeid),
            user_paths=(str(self.config.rootpath),),
            valgrind_target=item.nodeid,
            defer_flamegraph=True,  # the report renders the worst few at the end of the session
            flamegraph_quota=self.flamegraph_quota,
        )

    def _wrap(self, item: pytest.Function, settings: Settings) -> Any:
        original = item.obj
        plugin = self
        context = self._base_context(item, settings)
        if is_async_callable(original):

            @functools.wraps(original)
            async def leak_async(**kwargs: Any) -> None:
                step = functools.partial(original, **kwargs)
                if settings.mode == "repeat":
                    await repeat_async(step, settings.warmup + settings.iterations)
                    return
                await plugin._check_async(item, step, settings, context)

            return leak_async

        @functools.wraps(original)
        def leak_sync(**kwargs: Any) -> None:
            step = functools.partial(original, **kwargs)
            if settings.mode == "repeat":
                _raise_cause(repeat, step, settings.warmup + settings.iterations)
                return
            plugin._check_sync(item, step, settings, context)

        return leak_sync

    def _judge(self, item: pytest.Item, result: CheckResult, seconds: float) -> None:
        before = item.stash.get(_BEFORE, None)
        if before is not None and any(f.probe in HANDLE_PROBES for f in result.leaks):
            # Handles grew across iterations: list what is left now, in this one failure, and
            # let teardown record (not fail on) what remains after the fixtures are gone.
            settings = item.stash[_SETTINGS]
            allow = Allowlist(settings.allow_threads, settings.allow_tasks, settings.allow_files)
            # Only the kinds that grew: an fd the fixtures will close is not what leaked.
            kinds = {_PROBE_KINDS.get(f.probe) for f in result.leaks}
            left = [
                h
                for h in diff_snapshots(before, HandleSnapshot.take(), allow)
                if h.kind in kinds and _key(h) not in self.wide_handles
            ]
            result = dataclasses.replace(result, handles=group_handles(result.handles + tuple(left)))
            item.stash[_HANDLES_REPORTED] = True
        item.stash[_RESULT] = result
        item.stash[_STATUS]["leak"] = seconds
        if result.leaking:
            pytest.fail(str(result), pytrace=False)

    # -- running: valgrind children, async tests without pytest-asyncio ----

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """Under ``--leak-valgrind``, run the test in a memcheck child instead of here."""
        settings = item.stash.get(_SETTINGS, None)
        if not self.valgrind or settings is None or settings.mode != "check":
            return
        from ..valgrind import ValgrindNotFoundError, run_valgrind

        try:
            report = run_valgrind(
                item.nodeid,
                iterations=min(settings.iterations, 10),
                warmup=min(settings.warmup, 2),
                cwd=item.config.rootpath,
                check_target=False,  # collected here already
            )
        except ValgrindNotFoundError as exc:
            pytest.skip(str(exc))
        item.user_properties.append(("leakcheck-valgrind", report.to_dict()))
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        # The body ran in the child; stop pytest from running it again here.
        item.obj = _ran_elsewhere_async if is_async_callable(item.obj) else _ran_elsewhere  # type: ignore[attr-defined]

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run async leak tests on our own loop unless pytest-asyncio runs them."""
        if _SETTINGS not in pyfuncitem.stash or not is_async_callable(pyfuncitem.obj):
            return None
        if _asyncio_managed(pyfuncitem):
            return None
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        run_on_new_loop(pyfuncitem.obj(**args))
        return True

    # -- handles around setup and teardown ---------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, object, object]:
        """Remember the handles wider-scoped fixtures create: they outlive a test by design."""
        if fixturedef.scope == "function" or not RECORDER.depth:
            return (yield)
        before = HandleSnapshot.take()
        try:
            return (yield)
        finally:
            after = HandleSnapshot.take()
            self.wide_handles |= _handle_keys(after) - _handle_keys(before)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        """Snapshot handles before any fixture of a leak test is set up."""
        settings = item.stash.get(_SETTINGS, None)
        if settings is not None and settings.mode == "check" and not self.valgrind:
            RECORDER.start(exclude=self._excluded_paths())
            item.stash[_BEFORE] = HandleSnapshot.take()
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        """After every fixture is finalized: anything new and not released is a teardown failure."""
        try:
            return (yield)
        finally:
            before = item.stash.get(_BEFORE, None)
            if before is not None:
                del item.stash[_BEFORE]
                settings = item.stash[_SETTINGS]
                try:
                    allow = Allowlist(settings.allow_threads, settings.allow_tasks, settings.allow_files)
                    leaked = [
                        h for h in settle(before, allow, grace=settings.grace) if _key(h) not in self.wide_handles
                    ]
                finally:
                    RECORDER.stop()
                reported: bool = item.stash.get(_HANDLES_REPORTED, False)
                if leaked and reported:
                    pass  # the leak failure of the call listed them: one report, not also an ERROR
                elif leaked:
                    groups = group_handles(leaked)
                    item.user_properties.append((_PROP_HANDLES, [dataclasses.asdict(h) for h in groups]))
                    lines = "\n".join(describe_handle_groups(groups))
                    count = handle_count(groups)
                    pytest.fail(f"{item.nodeid}: left behind after teardown ({count} handles):\n{lines}", pytrace=False)

    def _excluded_paths(self) -> list[str]:
        paths = []
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is not None:
            paths.append(str(factory.getbasetemp()))
        if self.report_dir is not None:
            paths.append(str(self.report_dir))
        paths.append(str(self.guard.folder))
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            paths.append(str(cache._cachedir))
        return paths

    # -- reporting ------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the check result to the call report, so xdist carries it to the controller."""
        report = yield
        result = item.stash.get(_RESULT, None)
        if call.when == "call" and result is not None:
            report.user_properties.append((_PROP, result.to_dict()))
            del item.stash[_RESULT]  # items live for the session: keep nothing big on them
        status = item.stash.get(_STATUS, None)
        if call.when == "call" and status is not None:
            report.user_properties.append((_PROP_STATUS, status))
            del item.stash[_STATUS]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect one record per leak test (on the controller under xdist)."""
        if "leak" not in report.keywords or self.is_worker:
            return
        props: dict[str, Any] = dict(report.user_properties)
        worker = getattr(report, "node", None)
        worker_id = getattr(worker, "gateway", None)
        worker_name = getattr(worker_id, "id", None)
        old = self.pending.get(report.nodeid)
        # Reports live for the session (the terminal keeps them): drop the big properties once read.
        report.user_properties[:] = [p for p in report.user_properties if p[0] not in _OUR_PROPS]
        status: dict[str, Any] = props.get(_PROP_STATUS) or {}
        if report.when == "call" or (report.when == "setup" and not report.passed):
            result = CheckResult.from_dict(props[_PROP]) if _PROP in props else None
            if report.skipped:
                outcome = "skipped"
            elif result is not None and result.leaking:
                outcome = "leaking"
            elif report.failed:
                outcome = "error"
            else:
                outcome = "passed"
            message = "" if report.passed else report.longreprtext
            extra = {"valgrind": props["leakcheck-valgrind"]} if "leakcheck-valgrind" in props else {}
            if extra and report.failed and result is None:
                outcome = "leaking"
            if status.get("outcome") and outcome in ("passed", "error"):
                outcome = status["outcome"]
                # The detail first (the summary's line), then any failure of an explicitly marked test.
                message = "\n".join(filter(None, (status.get("detail", ""), message)))
            record = TestRecord(
                report.nodeid, outcome, result, message, worker_name, extra, status.get("plain"), status.get("leak")
            )
            self._record(report, record)
        elif report.when == "teardown" and _PROP_HANDLES in props and old is not None:
            handles = tuple(LeakedHandle(**h) for h in props[_PROP_HANDLES])
            result = old.result
            if result is not None:
                result = dataclasses.replace(result, handles=group_handles(result.handles + handles))
            message = (old.message + "\n" if old.message else "") + report.longreprtext
            self.pending[report.nodeid] = dataclasses.replace(old, outcome="leaking", result=result, message=message)
        if report.when == "teardown":
            self._finish(report.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist: tell each worker where to keep verdicts while an attribution window runs."""
        node.workerinput["leakcheck_verdicts"] = str(self.guard.folder)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """pytest-xdist: a worker died in a test; if in its attribution window, report the verdict it reached."""
        result = self.guard.recover(crashitem)
        if result is None:
            return
        report.longrepr = f"{report.longreprtext}\n{CRASH_NOTE}\n{result}"
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", None)
        outcome = "leaking" if result.leaking else "error"
        self._record(report, TestRecord(crashitem, outcome, result, report.longreprtext, worker))
        self._finish(crashitem)  # a crashed test reports no teardown

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Remove the session's verdict folder (the controller's: workers share it)."""
        if not self.is_worker:
            self.guard.close()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report (controller or single process only)."""
        if self.is_worker:
            return
        records = self._spilled()
        if self.report_dir is None or not records:
            return
        from ..report import write_report

        write_report(RunResults.new(records), self.report_dir, flamegraphs=self.flamegraphs)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say how many leak tests leaked, could not be repeated or judged, and where the report is."""
        if not self.summaries or self.is_worker:
            return
        count = {k: sum(t.outcome == k for t in self.summaries) for k in ("leaking", "not_repeatable", "not_judged")}
        line = f"leakcheck: {len(self.summaries)} leak tests, {count['leaking']} leaking"
        for key in ("not_repeatable", "not_judged"):
            if count[key]:
                line += f", {count[key]} {key.replace('_', ' ')}"
        if self.report_dir is not None:
            line += f"; report: {self.report_dir / 'index.html'}"
        terminalreporter.write_sep("-", line)
        for text in summary_lines(self.summaries):
            terminalreporter.write_line(text)
