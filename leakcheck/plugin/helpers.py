"""Stash keys, constants and the small functions the plugin's hooks share."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..config import Settings
from ..errors import ScenarioError, StepTimeoutError
from ..handles import HandleSnapshot, diff_snapshots
from ..probes.unclosed import RECORDER as UNCLOSED
from ..results import (
    CheckResult,
    LeakedHandle,
    TestRecord,
)

_SETTINGS = pytest.StashKey[Settings]()
_BEFORE = pytest.StashKey[HandleSnapshot]()
_RESULT = pytest.StashKey[CheckResult]()
_STATUS = pytest.StashKey[dict[str, Any]]()
_IMPLICIT = pytest.StashKey[bool]()
_HANDLES_REPORTED = pytest.StashKey[bool]()
#: The kind of handle each handle-counting measure counts.
_PROBE_KINDS = {
    "fds": "fd",
    "threads": "thread",
    "os_threads": "thread",
    "children": "child",
    "files": "file",
    "tasks": "task",
}
_PROP = "leakcheck"
_PROP_HANDLES = "leakcheck-handles"
_PROP_STATUS = "leakcheck-status"
_OUR_PROPS = (_PROP, _PROP_HANDLES, _PROP_STATUS)


def _ini(config: pytest.Config, name: str) -> object:
    value = config.getini(name)
    return value if value not in ("", None, []) else None


@contextlib.contextmanager
def _unclosed_counted(settings: Settings) -> Iterator[None]:
    """Count unclosed resources from the plain first call on, when that measure is taken.

    The check owns what the garbage collector had to close: the plain call's
    ResourceWarning would otherwise also fail the test at teardown under
    ``filterwarnings = error``, one problem reported twice. The check starts
    counting from its baseline; before it, events are only recorded.
    """
    if "unclosed" not in settings.probes:
        yield
        return
    UNCLOSED.start(settings.allow_unclosed)
    try:
        yield
    finally:
        UNCLOSED.stop()


def _ran_elsewhere(**kwargs: Any) -> None:
    """Stands in for a test body that already ran in a valgrind child."""


async def _ran_elsewhere_async(**kwargs: Any) -> None:
    """The async twin of :func:`_ran_elsewhere`."""


def _is_unittest(item: pytest.Item) -> bool:
    return type(item).__name__ == "TestCaseFunction" and type(item).__module__ == "_pytest.unittest"


def _flamegraphs(config: pytest.Config) -> int | None:
    """--leak-flamegraphs, else ini leak_flamegraphs, else the default; ``None`` means all."""
    from ..report.flames import DEFAULT_FLAMEGRAPHS, parse_flamegraphs

    raw = config.getoption("leak_flamegraphs")
    if raw is not None:
        return parse_flamegraphs(raw)
    ini = _ini(config, "leak_flamegraphs")
    return DEFAULT_FLAMEGRAPHS if ini is None else parse_flamegraphs(ini, "ini leak_flamegraphs")


def _capture_dir(report_dir: Path, nodeid: str) -> Path:
    from ..api import capture_dir_for

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
    except StepTimeoutError as exc:
        pytest.fail(str(exc), pytrace=False)
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
