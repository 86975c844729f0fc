"""Reading and writing results files: atomic writes, thinned samples, one error type for every bad read.

``results.json`` keeps at most :data:`MAX_POINTS` readings per series: a check
of 4,000 iterations has judged its samples already (its findings keep the
statistics), and a suite of hundreds of tests would otherwise write tens of
megabytes of readings nobody can chart at more than a few hundred points.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import secrets
from pathlib import Path

from ..errors import ResultsFileError
from ..results import RunResults, Series, TestRecord, load_results

__all__ = ["MAX_POINTS", "atomic_write_text", "load_run", "thin_record", "thin_series", "write_results"]

#: Readings kept per series in results.json (the verdict's statistics are kept whole).
MAX_POINTS = 200


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and a rename.

    An interrupted run leaves either the old file or the new one, never half of one.
    The file gets the mode a plain ``open()`` would give it (0666 less the umask): the
    temp file is created with mode 0666 and the kernel applies the umask, where
    mkstemp's 0600 would hide reports from a CI artifact step or a web server.  (Reading
    the umask means setting it, which races with other threads creating files.)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def thin_series(series: Series, max_points: int = MAX_POINTS) -> Series:
    """``series`` with at most ``max_points`` readings: the first, the last, and each stretch's low and high.

    Keeping both extremes of every stretch keeps the chart's shape, its peak
    and its steps, which an even stride would miss.
    """
    n = len(series.values)
    if n <= max_points or max_points < 4:
        return series
    buckets = (max_points - 2) // 2
    keep = {0, n - 1}
    inner = n - 2
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        if lo >= hi:
            continue
        finite = [i for i in range(lo, hi) if math.isfinite(series.values[i])]
        if not finite:
            keep.add(lo)
            continue
        keep.add(min(finite, key=lambda i: series.values[i]))
        keep.add(max(finite, key=lambda i: series.values[i]))
    picked = sorted(keep)
    return Series(
        series.probe,
        series.unit,
        tuple(series.iterations[i] for i in picked),
        tuple(series.values[i] for i in picked),
    )


def thin_record(record: TestRecord, max_points: int = MAX_POINTS) -> TestRecord:
    """``record`` with every series of its result thinned by :func:`thin_series`."""
    result = record.result
    if result is None or all(len(s.values) <= max_points for s in result.samples):
        return record
    samples = tuple(thin_series(s, max_points) for s in result.samples)
    return dataclasses.replace(record, result=dataclasses.replace(result, samples=samples))


#: A list of numbers (or nulls) that ``indent=1`` spread over one line per item.
_NUMBER_LIST = re.compile(r"\[\n[ ]*((?:-?[\d.eE+-]+|null)(?:,\n[ ]*(?:-?[\d.eE+-]+|null))*)\n[ ]*\]")


def write_results(path: str | os.PathLike[str], results: RunResults) -> None:
    """Write ``results`` as JSON to ``path``, atomically, with its series thinned (:data:`MAX_POINTS`).

    Indented for people, except lists of numbers (readings), which stay on one line.
    """
    results = dataclasses.replace(results, tests=tuple(thin_record(t) for t in results.tests))
    text = json.dumps(results.to_dict(), indent=1, allow_nan=False)
    text = _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\n[ ]*", ",", m.group(1)) + "]", text)
    atomic_write_text(path, text + "\n")


def load_run(path: str | os.PathLike[str]) -> RunResults:
    """:func:`~leakcheck.results.load_results`, with every failure as :class:`ResultsFileError`."""
    name = os.fspath(path)
    try:
        return load_results(path)
    except ResultsFileError:
        raise
    except UnicodeDecodeError:
        raise ResultsFileError(name, "not UTF-8 text (is it a results.json?)") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(name, f"malformed results: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ResultsFileError(name, "malformed results: nested too deeply") from None
