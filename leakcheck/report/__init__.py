"""The local report: ``results.json``, ``index.html`` and one page per test.

Layout of a report directory::

    DIR/results.json                 RunResults, schema leakcheck/data/results.schema.json
    DIR/index.html                   every leak test, failing first, a sparkline per measure
    DIR/tests/<safe-id>.html         one test: charts, handles, allocation sites, notes
    DIR/tests/<safe-id>/flamegraph.html   memray's leaks flamegraph (the worst few leaking tests)
    DIR/tests/<safe-id>/memray-leaks.bin  the capture a flamegraph is made from (a few KiB)
    DIR/assets/<hash>.js|css         memray's scripts and styles, shared by every flamegraph

Every file is written atomically (:mod:`.files`); series are thinned to a few
hundred readings. Only the worst ``flamegraphs`` leaking tests get a
flamegraph (:mod:`.flames`). ``leakcheck report DIR`` re-renders the HTML from
``results.json`` (and makes missing flamegraphs from kept captures). Beside the report:
:mod:`.trend` charts runs over time,
:mod:`.baseline` stores the runs a nightly run is compared with, and
:mod:`.svg` draws the charts of both.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..results import RunResults, TestRecord, load_results
from .files import atomic_write_text, load_run, thin_record, write_results
from .flames import DEFAULT_FLAMEGRAPHS, make_flamegraphs
from .html import order_tests, render_index, render_test_page, safe_name

__all__ = [
    "DEFAULT_FLAMEGRAPHS",
    "atomic_write_text",
    "capture_dir_for",
    "ensure_writable_report_dir",
    "load_run",
    "order_tests",
    "render_html",
    "rerender_report",
    "safe_name",
    "write_report",
    "write_results",
]


def ensure_writable_report_dir(path: str | os.PathLike[str], *, option: str = "--leak-report") -> Path:
    """Create ``path`` if needed and prove a file can be written in it; return it resolved.

    Raises :class:`ConfigError` naming ``option`` when it is a file, cannot be
    created, or is not writable — before any test has run.
    """
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(option, os.fspath(path), "exists and is not a directory; give a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".leakcheck-write-test.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            option,
            os.fspath(path),
            f"the report directory cannot be written ({reason}); choose a writable directory",
        ) from None
    return target.resolve()


def capture_dir_for(out_dir: str | os.PathLike[str], test_id: str) -> Path:
    """Where a test's flamegraph (and kept capture) goes: pass it to ``open_window(capture_dir=)``."""
    return Path(out_dir) / "tests" / safe_name(test_id)


def _relative_flamegraphs(results: RunResults, out_dir: Path) -> RunResults:
    """Flamegraph paths made relative to ``out_dir`` (POSIX form) when they lie inside it."""
    root = out_dir.resolve()
    changed = False
    tests = []
    for t in results.tests:
        a = t.result.attribution if t.result is not None else None
        if t.result is not None and a is not None and a.flamegraph:
            path = Path(a.flamegraph)
            if path.is_absolute():
                try:
                    rel = path.resolve().relative_to(root).as_posix()
                except ValueError:
                    rel = a.flamegraph  # outside the report: keep the absolute path
                if rel != a.flamegraph:
                    result = dataclasses.replace(t.result, attribution=dataclasses.replace(a, flamegraph=rel))
                    t = dataclasses.replace(t, result=result)
                    changed = True
        tests.append(t)
    return dataclasses.replace(results, tests=tuple(tests)) if changed else results


def _flamegraph_href(record: TestRecord, out_dir: Path) -> str | None:
    """The detail page's link to the flamegraph, when the file is there."""
    a = record.result.attribution if record.result is not None else None
    if a is None or not a.flamegraph:
        return None
    path = Path(a.flamegraph)
    full = path if path.is_absolute() else out_dir / path
    if not full.is_file():
        return None
    return full.as_uri() if path.is_absolute() else "../" + path.as_posix()


def render_html(results: RunResults, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``index.html`` and ``tests/<safe-id>.html`` for ``results``; return the index path."""
    out = Path(out_dir)
    pages: dict[str, str] = {}
    for record in order_tests(results.tests):
        name = safe_name(record.id)
        pages[record.id] = f"tests/{name}.html"
        atomic_write_text(out / "tests" / f"{name}.html", render_test_page(record, _flamegraph_href(record, out)))
    index = out / "index.html"
    atomic_write_text(index, render_index(results, pages))
    return index


def write_report(
    results: RunResults,
    out_dir: str | os.PathLike[str],
    *,
    flamegraphs: int | None = DEFAULT_FLAMEGRAPHS,
) -> Path:
    """Write ``results.json``, ``index.html`` and the per-test pages; return the index path.

    Flamegraphs are made from kept memray captures for the ``flamegraphs``
    worst leaking tests (``None``: every one), see :mod:`.flames`.
    """
    out = ensure_writable_report_dir(out_dir)
    results = _relative_flamegraphs(results, out)
    results = dataclasses.replace(results, tests=tuple(thin_record(t) for t in results.tests))
    results, _ = make_flamegraphs(results, out, flamegraphs)
    write_results(out / "results.json", results)
    return render_html(results, out)


def rerender_report(
    out_dir: str | os.PathLike[str], *, flamegraphs: int | None = DEFAULT_FLAMEGRAPHS
) -> tuple[Path, list[str]]:
    """Re-render a report directory from its ``results.json`` and kept captures.

    Missing flamegraphs of the ``flamegraphs`` worst leaking tests (``None``:
    all) are made from their kept captures. Returns the index path and notes
    (flamegraphs made or that could not be).
    """
    out = Path(out_dir)
    results = load_results(out / "results.json")
    updated, notes = make_flamegraphs(results, out, flamegraphs)
    if updated != results:
        results = updated
        write_results(out / "results.json", results)
    return render_html(results, out), notes
