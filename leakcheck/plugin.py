"""The pytest adapter: the ``leak`` marker, ``--leak-*`` options, ``leak_*`` ini keys.

A test marked ``@pytest.mark.leak`` has its body run as one iteration, many
times, by :mod:`leakcheck.runner`; function-scoped fixtures are set up once
around all the iterations. Handles (fds, threads, children, files) are
compared between the start of setup and the end of teardown, less what
wider-scoped fixtures created. Everything else lives in the core modules,
which never import pytest.

Under pytest-xdist each worker attaches its results to the test reports
(``user_properties``), so the controller alone writes one merged report.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .config import OPTIONS, Settings, add_options, resolve
from .errors import ConfigError, ScenarioError
from .handles import RECORDER, Allowlist, HandleSnapshot, diff_snapshots, settle
from .results import CheckResult, LeakedHandle, RunResults, TestRecord
from .runner import Hooks, _run_on_new_loop, is_async_callable, repeat, repeat_async, run, run_async

__all__ = ["LeakPlugin", "leak"]

_SETTINGS = pytest.StashKey[Settings]()
_BEFORE = pytest.StashKey[HandleSnapshot]()
_RESULT = pytest.StashKey[CheckResult]()
_PROP = "leakcheck"
_PROP_HANDLES = "leakcheck-handles"


def leak(
    *,
    iterations: int = 200,
    warmup: int = 20,
    max_growth: str | int | None = None,
    probes: list[str] | None = None,
    **more: object,
) -> None:
    """Run the test body as one iteration, many times, and fail if memory or handles grow.

    Function-scoped fixtures are set up once around all iterations. Any
    ``--leak-*`` setting is also accepted here as a keyword (``limits``,
    ``allow_threads``, ``attribution``, ``mode``...). A keyword set here
    beats the command line, which beats the ini file.
    """


def _marker_help() -> str:
    kwargs = ", ".join(f"{o.name}=..." for o in OPTIONS if o.marker)
    return f"leak({kwargs}): {inspect.getdoc(leak).splitlines()[0]}"  # type: ignore[union-attr]


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
    for option in OPTIONS:
        parser.addini(option.ini, help=option.help, default=None)
    parser.addini("leak_report", help="Default directory for the leak report", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the plugin object holding this session's state."""
    config.addinivalue_line("markers", _marker_help())
    if config.pluginmanager.has_plugin("leakcheck-session"):
        return
    config.pluginmanager.register(LeakPlugin(config), "leakcheck-session")


def _ini(config: pytest.Config, name: str) -> object:
    value = config.getini(name)
    return value if value not in ("", None, []) else None


class LeakPlugin:
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
            from .report import ensure_writable_report_dir

            try:
                self.report_dir = ensure_writable_report_dir(Path(str(report)))
            except ConfigError as exc:
                raise pytest.UsageError(f"leakcheck: {exc}") from None
        # Inside the valgrind child the test runs in repeat mode, whatever addopts say.
        self.valgrind = bool(config.getoption("leak_valgrind")) and not os.environ.get("LEAKCHECK_VALGRIND_CHILD")
        self.records: dict[str, TestRecord] = {}
        self.wide_handles: set[object] = set()
        self.is_worker = hasattr(config, "workerinput")

    # -- collection: validate markers, wrap the test functions ------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Check every leak marker now, so a typo fails before anything runs."""
        for item in items:
            marker = item.get_closest_marker("leak")
            if marker is None:
                continue
            if not isinstance(item, pytest.Function):
                raise pytest.UsageError(f"{item.nodeid}: the leak marker applies to test functions only")
            if marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: the leak marker takes keywords only, got positional {marker.args!r}; "
                    "write e.g. @pytest.mark.leak(iterations=300)"
                )
            try:
                settings = resolve(marker.kwargs, self.cli, self.ini, marker_source=f"leak marker on {item.nodeid}")
            except ConfigError as exc:
                raise pytest.UsageError(f"leakcheck: {exc}") from None
            item.stash[_SETTINGS] = settings
            if settings.mode == "skip":
                item.add_marker(pytest.mark.skip(reason="leak tests skipped (leak mode 'skip')"))
            elif settings.mode in ("check", "repeat") and not self.valgrind:
                item.obj = self._wrap(item, settings)

    def _wrap(self, item: pytest.Function, settings: Settings) -> Any:
        original = item.obj
        plugin = self
        hooks = Hooks(
            capture_dir=None if self.report_dir is None else _capture_dir(self.report_dir, item.nodeid),
            always_attribute=self.report_dir is not None and settings.attribution != "auto",
            own_handles=False,  # the setup/teardown hooks below compare handles
        )
        if is_async_callable(original):

            @functools.wraps(original)
            async def leak_async(**kwargs: Any) -> None:
                step = functools.partial(original, **kwargs)
                if settings.mode == "repeat":
                    await repeat_async(step, settings.warmup + settings.iterations)
                    return
                result = await _unwrap_errors(run_async(step, settings=settings, name=item.nodeid, hooks=hooks))
                plugin._judge(item, result)

            return leak_async

        @functools.wraps(original)
        def leak_sync(**kwargs: Any) -> None:
            step = functools.partial(original, **kwargs)
            if settings.mode == "repeat":
                _raise_cause(repeat, step, settings.warmup + settings.iterations)
                return
            result = _raise_cause(run, step, settings=settings, name=item.nodeid, hooks=hooks)
            plugin._judge(item, result)

        return leak_sync

    def _judge(self, item: pytest.Item, result: CheckResult) -> None:
        item.stash[_RESULT] = result
        if result.leaking:
            pytest.fail(str(result), pytrace=False)

    # -- running: valgrind children, async tests without pytest-asyncio ----

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """Under ``--leak-valgrind``, run the test in a memcheck child instead of here."""
        settings = item.stash.get(_SETTINGS, None)
        if not self.valgrind or settings is None or settings.mode != "check":
            return
        from .valgrind import ValgrindNotFoundError, run_valgrind

        try:
            report = run_valgrind(
                item.nodeid,
                iterations=min(settings.iterations, 10),
                warmup=min(settings.warmup, 2),
                cwd=item.config.rootpath,
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
        _run_on_new_loop(pyfuncitem.obj(**args))
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
                    leaked = [h for h in settle(before, allow, grace=settings.grace) if _key(h) not in self.wide_handles]
                finally:
                    RECORDER.stop()
                if leaked:
                    item.user_properties.append((_PROP_HANDLES, [dataclasses.asdict(h) for h in leaked]))
                    lines = "\n".join(f"  {h.describe()}" + (f"\n{_indent(h.stack)}" if h.stack else "") for h in leaked[:20])
                    more = f"\n  ... and {len(leaked) - 20} more" if len(leaked) > 20 else ""
                    pytest.fail(f"{item.nodeid}: left behind after teardown:\n{lines}{more}", pytrace=False)

    def _excluded_paths(self) -> list[str]:
        paths = []
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is not None:
            paths.append(str(factory.getbasetemp()))
        if self.report_dir is not None:
            paths.append(str(self.report_dir))
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            paths.append(str(cache._cachedir))
        return paths

    # -- reporting ------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the check result to the call report, so xdist carries it to the controller."""
        report = yield
        result = item.stash.get(_RESULT, None)
        if call.when == "call" and result is not None:
            report.user_properties.append((_PROP, result.to_dict()))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect one record per leak test (on the controller under xdist)."""
        if "leak" not in report.keywords or self.is_worker:
            return
        props: dict[str, Any] = dict(report.user_properties)
        worker = getattr(report, "node", None)
        worker_id = getattr(worker, "gateway", None)
        worker_name = getattr(worker_id, "id", None)
        old = self.records.get(report.nodeid)
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
            self.records[report.nodeid] = TestRecord(report.nodeid, outcome, result, message, worker_name, extra)
        elif report.when == "teardown" and _PROP_HANDLES in props and old is not None:
            handles = tuple(LeakedHandle(**h) for h in props[_PROP_HANDLES])
            result = old.result
            if result is not None:
                result = dataclasses.replace(result, handles=result.handles + handles)
            message = (old.message + "\n" if old.message else "") + report.longreprtext
            self.records[report.nodeid] = dataclasses.replace(old, outcome="leaking", result=result, message=message)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report (controller or single process only)."""
        if self.report_dir is None or self.is_worker or not self.records:
            return
        from .report import write_report

        results = RunResults.new([_relative(r, self.report_dir) for r in self.records.values()])
        index = write_report(results, self.report_dir)
        self.index = index

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the report is and how many leak tests leaked."""
        if not self.records or self.is_worker:
            return
        leaking = sum(r.outcome == "leaking" for r in self.records.values())
        line = f"leakcheck: {len(self.records)} leak tests, {leaking} leaking"
        if self.report_dir is not None:
            line += f"; report: {self.report_dir / 'index.html'}"
        terminalreporter.write_sep("-", line)


def _ran_elsewhere(**kwargs: Any) -> None:
    """Stands in for a test body that already ran in a valgrind child."""


async def _ran_elsewhere_async(**kwargs: Any) -> None:
    """The async twin of :func:`_ran_elsewhere`."""


def _capture_dir(report_dir: Path, nodeid: str) -> Path:
    from .api import capture_dir_for

    return capture_dir_for(report_dir, nodeid)


def _relative(record: TestRecord, report_dir: Path) -> TestRecord:
    result = record.result
    if result is None or result.attribution is None or not result.attribution.flamegraph:
        return record
    path = Path(result.attribution.flamegraph)
    if path.is_absolute():
        try:
            path = path.relative_to(report_dir.resolve())
        except ValueError:
            try:
                path = path.relative_to(report_dir.absolute())
            except ValueError:
                return record
    attribution = dataclasses.replace(result.attribution, flamegraph=path.as_posix())
    return dataclasses.replace(record, result=dataclasses.replace(result, attribution=attribution))


def _asyncio_managed(item: pytest.Function) -> bool:
    if type(item).__module__.startswith("pytest_asyncio"):
        return True
    return item.get_closest_marker("asyncio") is not None and item.config.pluginmanager.has_plugin("asyncio")


def _raise_cause(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a step that raised fails the test with its own exception and traceback."""
    try:
        return fn(*args, **kwargs)
    except ScenarioError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


async def _unwrap_errors(coro: Any) -> Any:
    try:
        return await coro
    except ScenarioError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def _key(h: LeakedHandle) -> object:
    return (h.kind, h.description.split(" (", 1)[0] if h.kind == "thread" else h.description)


def _handle_keys(snapshot: HandleSnapshot) -> set[object]:
    """Keys comparable with :func:`_key` of the handles a diff would report."""
    empty = HandleSnapshot(frozenset(), (), frozenset(), frozenset(), frozenset())
    return {_key(h) for h in diff_snapshots(empty, snapshot)}


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.rstrip().splitlines()[-6:])


