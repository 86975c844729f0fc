"""Match the loss records of the N and 2N runs by stack and keep those that grow.

One-off losses — at import, at interpreter start-up or shutdown — are the same in
both runs and drop out.  Records whose stacks never leave the interpreter and the C
library are dropped too (unless ``focus`` patterns say otherwise): the heuristic
Shopify's ruby_memcheck uses for Ruby, where a leak is only the extension's if its
stack passes through the extension.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from .memcheck_xml import LEAK_KINDS, Frame, LossRecord, MemcheckRun
from .results import GrowingRecord, is_core

__all__ = ["compare_runs"]

# Functions that mark a record as interpreter start-up or shutdown.
_LIFECYCLE_FUNCTIONS = frozenset(
    {
        "Py_InitializeFromConfig",
        "Py_InitializeEx",
        "Py_Initialize",
        "pymain_init",
        "Py_FinalizeEx",
        "Py_Finalize",
        "_dl_init",
        "_dl_allocate_tls",
    }
)


def _matches_focus(frame: Frame, focus: Sequence[str]) -> bool:
    fields = [frame.obj, Path(frame.obj).name if frame.obj else None, frame.fn, frame.file]
    return any(value is not None and fnmatchcase(value, pattern) for pattern in focus for value in fields)


def _in_focus(record: LossRecord, focus: Sequence[str]) -> bool:
    if focus:
        return any(_matches_focus(frame, focus) for frame in record.frames)
    # Default: some frame outside the interpreter and the C library (an extension's .so).
    return any(not is_core(frame) for frame in record.frames)


def _is_lifecycle(record: LossRecord) -> bool:
    return any(frame.fn in _LIFECYCLE_FUNCTIONS for frame in record.frames)


def _group(records: Iterable[LossRecord]) -> dict[tuple[object, ...], list[LossRecord]]:
    groups: dict[tuple[object, ...], list[LossRecord]] = {}
    for record in records:
        groups.setdefault((record.kind, record.stack_key), []).append(record)
    return groups


def compare_runs(
    run_n: MemcheckRun,
    run_2n: MemcheckRun,
    iterations: int,
    *,
    focus: Sequence[str] = (),
    min_blocks_fraction: float = 0.25,
) -> tuple[tuple[GrowingRecord, ...], int]:
    """Match loss records of the N and 2N runs by stack; return the growing ones.

    A record grows when its bytes rose and it gained at least one block per
    ``1 / min_blocks_fraction`` iterations (so a single stray block is not a leak).
    Start-up/shutdown records are ignored; growing records outside ``focus`` (by
    default: stacks made only of interpreter and C library frames) are counted in the
    second element of the result instead.  Records are sorted by bytes per iteration.
    """
    low = _group(r for r in run_n.records if not _is_lifecycle(r))
    high = _group(r for r in run_2n.records if not _is_lifecycle(r))
    growing: list[GrowingRecord] = []
    dropped = 0
    min_blocks = max(1, int(iterations * min_blocks_fraction + 0.999))
    for key, records in high.items():
        before = low.get(key, [])
        bytes_n, blocks_n = sum(r.bytes for r in before), sum(r.blocks for r in before)
        bytes_2n, blocks_2n = sum(r.bytes for r in records), sum(r.blocks for r in records)
        if bytes_2n <= bytes_n or blocks_2n - blocks_n < min_blocks:
            continue
        if not _in_focus(records[0], focus):
            dropped += 1
            continue
        growing.append(
            GrowingRecord(
                kind=records[0].kind,
                frames=records[0].frames,
                bytes_n=bytes_n,
                bytes_2n=bytes_2n,
                blocks_n=blocks_n,
                blocks_2n=blocks_2n,
                iterations=iterations,
                suppression=records[0].suppression,
            )
        )
    growing.sort(key=lambda g: (-g.per_iteration_bytes, LEAK_KINDS.index(g.kind)))
    return tuple(growing), dropped
