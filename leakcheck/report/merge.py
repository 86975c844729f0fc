"""Merging the reports of several shards (CI jobs) into one report directory.

Each shard of a ``--leak-shard=I/N`` matrix writes its own report; this
reads their ``results.json`` files, refuses a test that two shards both ran
(the shards overlap: a wrong matrix), copies each test's files (flamegraphs,
kept captures) into the merged directory and writes one report there, which
one baseline comparison can then read.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..results import RunResults, TestRecord
from . import DEFAULT_FLAMEGRAPHS, capture_dir_for, write_report
from .files import load_run
from .flames import ASSETS_DIR

__all__ = ["merge_reports"]


def _results_path(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    return path / "results.json" if path.is_dir() else path


def merge_reports(
    sources: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    flamegraphs: int | None = DEFAULT_FLAMEGRAPHS,
) -> RunResults:
    """Merge the shard reports ``sources`` (directories or ``results.json`` files) into ``out_dir``.

    The ``flamegraphs`` worst leaking tests of all shards have a flamegraph
    (made from the kept captures when their shard had not made one).

    Raises :class:`ConfigError` when two shards hold the same test, and
    :class:`leakcheck.ResultsFileError` when a shard's results cannot be read.
    """
    out = Path(out_dir)
    seen: dict[str, Path] = {}
    tests: list[TestRecord] = []
    runs = []
    for source in sources:
        path = _results_path(source)
        run = load_run(path)
        runs.append(run)
        assets = path.parent / ASSETS_DIR
        if assets.is_dir() and assets.resolve() != (out / ASSETS_DIR).resolve():
            # Flamegraphs link to memray's shared scripts: content-named, so copies never clash.
            shutil.copytree(assets, out / ASSETS_DIR, dirs_exist_ok=True)
        for record in run.tests:
            if record.id in seen:
                raise ConfigError(
                    "--merge",
                    os.fspath(source),
                    f"holds {record.id}, which {seen[record.id]} holds too; shards must not overlap "
                    "(give every job the same N in --leak-shard=I/N)",
                )
            seen[record.id] = path
            tests.append(_copy_files(record, path.parent, out))
    if not runs:
        raise ConfigError("--merge", "", "no shard given; name each shard's report directory")
    first = runs[0]
    created = max((r.created for r in runs), default="")
    merged = dataclasses.replace(first, tests=tuple(tests), created=created)
    write_report(merged, out, flamegraphs=flamegraphs)
    return merged


def _copy_files(record: TestRecord, shard_dir: Path, out: Path) -> TestRecord:
    """Copy the test's folder (flamegraph, capture) from its shard; keep paths relative to the report."""
    source = capture_dir_for(shard_dir, record.id)
    if source.is_dir() and source.resolve() != capture_dir_for(out, record.id).resolve():
        shutil.copytree(source, capture_dir_for(out, record.id), dirs_exist_ok=True)
    result = record.result
    if result is None or result.attribution is None or not result.attribution.flamegraph:
        return record
    flame = Path(result.attribution.flamegraph)
    if flame.is_absolute():
        return record
    if not (out / flame).is_file() and (shard_dir / flame).is_file():
        (out / flame).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shard_dir / flame, out / flame)
    return record
