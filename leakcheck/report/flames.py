"""Flamegraphs at scale: only the worst few leaking tests get one, and they share memray's scripts.

A memray flamegraph costs seconds to render and ~4.5 MB on disk, almost all
of it memray's inlined libraries (plotly alone is 3.6 MB); the data of one
page is a few KiB. A whole suite can have hundreds of leaking tests, so:

* during the run a leaking test's memray window only keeps its capture (a few
  KiB, ``tests/<safe-id>/memray-leaks.bin``; see ``defer_flamegraph``);
* when the report is written, the ``limit`` worst leaking tests (ranked by how
  many times over its limit the fastest-growing measure grows) get their
  flamegraph rendered, in parallel; the others get a note saying how to make
  theirs later from the kept capture;
* every flamegraph's large inline ``<script>`` and ``<style>`` blocks move to
  ``assets/<hash>.js|css``, written once and shared by every page, so a page
  keeps only its own data and still opens offline from ``file://``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ConfigError, LeakcheckError
from ..results import Attribution, RunResults, TestRecord
from ..suite import severity_of
from .files import atomic_write_text

__all__ = [
    "DEFAULT_FLAMEGRAPHS",
    "make_flamegraphs",
    "parse_flamegraphs",
    "severity",
    "share_assets",
    "shared_asset_links",
]

#: Flamegraphs a report renders unless told otherwise (``--leak-flamegraphs``).
DEFAULT_FLAMEGRAPHS = 20
ASSETS_DIR = "assets"
#: Inline blocks at least this big are shared; memray's page data is the one block kept inline.
_SHARE_MIN = 16 * 1024
_BLOCK = re.compile(r"<(script|style)((?:\s[^>]*)?)>(.*?)</\1>", re.DOTALL)


def parse_flamegraphs(value: object, source: str = "--leak-flamegraphs") -> int | None:
    """A flamegraph count: an integer >= 0, or ``"all"`` (returned as ``None``: no limit)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise ConfigError(source, value, "expected a number of flamegraphs >= 0, or 'all'")
    return count


def severity(record: TestRecord) -> float:
    """How bad a leak is, to pick the worst: its fastest measure's growth over that measure's limit."""
    return 0.0 if record.result is None else severity_of(record.result.leaks)


_NOTE_HEAD = "no flamegraph: not among the "


def _note(limit: int, out: Path) -> str:
    return (
        f"{_NOTE_HEAD}{limit} worst leaking tests of this run; make it from the "
        f"kept memray capture with `leakcheck report {out} --flamegraphs all`, or rerun with "
        "--leak-flamegraphs=all"
    )


def _other_notes(attribution: Attribution | None) -> tuple[str, ...]:
    """The attribution's notes less an earlier "not among the worst" one (a re-render replaces it)."""
    notes = attribution.notes if attribution is not None else ()
    return tuple(n for n in notes if not n.startswith(_NOTE_HEAD))


def _with(record: TestRecord, **changes: object) -> TestRecord:
    assert record.result is not None
    attribution = record.result.attribution or Attribution()
    attribution = dataclasses.replace(attribution, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(record, result=dataclasses.replace(record.result, attribution=attribution))


def make_flamegraphs(
    results: RunResults, out_dir: str | os.PathLike[str], limit: int | None = DEFAULT_FLAMEGRAPHS
) -> tuple[RunResults, list[str]]:
    """Render the flamegraphs of the ``limit`` worst tests (``None``: all) from their kept captures.

    A test that already has a flamegraph counts towards ``limit``; one left
    out gets a note on its page saying how to make it later (its capture stays).
    Returns the updated results and one line per flamegraph made or failed.
    """
    from ..attribution import CAPTURE_NAME, FLAMEGRAPH_NAME, render_flamegraph
    from . import capture_dir_for

    out = Path(out_dir)
    ranked: list[tuple[float, str, int]] = []
    for index, t in enumerate(results.tests):
        if t.result is None:
            continue
        a = t.result.attribution
        has = a is not None and a.flamegraph and (out / a.flamegraph).is_file()
        if has or (capture_dir_for(out, t.id) / CAPTURE_NAME).is_file():
            ranked.append((-severity(t), t.id, index))
    ranked.sort()
    chosen = ranked if limit is None else ranked[:limit]
    tests = list(results.tests)
    todo: list[int] = []
    for _, _, index in chosen:
        a = tests[index].result.attribution  # type: ignore[union-attr]
        if not (a is not None and a.flamegraph and (out / a.flamegraph).is_file()):
            todo.append(index)
    notes: list[str] = []

    def render(index: int) -> tuple[int, str | None, str]:
        folder = capture_dir_for(out, tests[index].id)
        try:
            render_flamegraph(folder / CAPTURE_NAME, folder / FLAMEGRAPH_NAME)
        except LeakcheckError as exc:
            return index, None, f"no flamegraph: {exc}"
        return index, (folder / FLAMEGRAPH_NAME).relative_to(out).as_posix(), ""

    # Each render is a subprocess: threads are enough to keep every core busy.
    workers = max(1, min(len(todo), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, flame, failure in pool.map(render, todo):
            record = tests[index]
            old = record.result.attribution if record.result is not None else None
            if flame is not None:
                tests[index] = _with(record, flamegraph=flame, notes=_other_notes(old))
                notes.append(f"{record.id}: flamegraph made from the kept capture")
            else:
                tests[index] = _with(record, notes=(old.notes if old else ()) + (failure,))
                notes.append(f"{record.id}: {failure}")
    if limit is not None:
        for _, _, index in ranked[limit:]:
            record = tests[index]
            a = record.result.attribution if record.result is not None else None
            note = _note(limit, out)
            if a is None or not (a.flamegraph and (out / a.flamegraph).is_file()):
                tests[index] = _with(record, notes=_other_notes(a) + (note,), flamegraph=None)
    for t in tests:
        a = t.result.attribution if t.result is not None else None
        if a is not None and a.flamegraph and not Path(a.flamegraph).is_absolute():
            page = out / a.flamegraph
            if page.is_file():
                share_assets(page, out / ASSETS_DIR)
    return dataclasses.replace(results, tests=tuple(tests)), notes


def share_assets(page: str | os.PathLike[str], assets_dir: str | os.PathLike[str]) -> int:
    """Move ``page``'s large inline scripts and styles to shared files in ``assets_dir``.

    Each block becomes ``assets_dir/<sha256 prefix>.js`` (or ``.css``), written
    once whatever the number of pages using it, and the page links to it by a
    relative path. Idempotent; returns the bytes the page shrank by.
    """
    path = Path(page)
    text = path.read_text(encoding="utf-8")
    assets = Path(assets_dir)
    href_base = Path(os.path.relpath(assets, path.parent)).as_posix()

    def replace(match: re.Match[str]) -> str:
        tag, attrs, body = match.group(1), match.group(2), match.group(3)
        if len(body) < _SHARE_MIN or "packed_data" in body or "src=" in attrs:
            return match.group(0)
        suffix = ".js" if tag == "script" else ".css"
        name = hashlib.sha256(body.encode("utf-8")).hexdigest()[:20] + suffix
        target = assets / name
        if not target.is_file():
            atomic_write_text(target, body)
        href = f"{href_base}/{name}"
        if tag == "script":
            return f'<script{attrs} charset="utf-8" src="{href}"></script>'
        return f'<link rel="stylesheet" href="{href}">'

    shared = _BLOCK.sub(replace, text)
    if shared == text:
        return 0
    atomic_write_text(path, shared)
    return len(text.encode("utf-8")) - len(shared.encode("utf-8"))


def shared_asset_links(page: str | os.PathLike[str]) -> Sequence[Path]:
    """The shared files ``page`` links to (for tests and merges): resolved paths."""
    path = Path(page)
    text = path.read_text(encoding="utf-8")
    links = re.findall(r'<(?:script[^>]*\ssrc|link rel="stylesheet" href)="([^"]+)"', text)
    return [(path.parent / link).resolve() for link in links if not link.startswith(("http:", "https:"))]
