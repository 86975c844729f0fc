"""The verdict of a memcheck run: the loss records that grew, and the report of a target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from ..units import format_size
from .memcheck_xml import Frame, LossRecord

__all__ = [
    "DEFAULT_MIN_BYTES",
    "DEFAULT_TOP",
    "GrowingRecord",
    "Status",
    "ValgrindReport",
    "is_core",
]

#: Loss records shown in the short verdict.
DEFAULT_TOP = 5
#: Bytes per iteration (definitely + indirectly lost) from which a run is ``leaking``.
DEFAULT_MIN_BYTES = 1.0

Status = Literal["clean", "leaking", "crashed", "timeout", "failed"]

# Objects whose frames are "the interpreter and the C library": a stack made only of
# these is not the user's code (unless --focus says otherwise).
_CORE_OBJECTS = (
    "libpython*",
    "python",
    "python3*",
    "libc.so*",
    "libc-*",
    "ld-linux*",
    "ld-*.so*",
    "ld.so*",
    "libm.so*",
    "libpthread*",
    "libdl*",
    "vgpreload_*",
)
_KIND_WORDS = {
    "Leak_DefinitelyLost": "definitely lost",
    "Leak_IndirectlyLost": "indirectly lost",
    "Leak_PossiblyLost": "possibly lost",
}
_ALLOCATORS = frozenset({"malloc", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc", "valloc"})


def is_core(frame: Frame) -> bool:
    """True when the frame is in the interpreter or the C library (not the user's code)."""
    if frame.obj is None:
        return False
    name = Path(frame.obj).name
    return any(fnmatchcase(name, pattern) for pattern in _CORE_OBJECTS)


def _format_stack(frames: Sequence[Frame], max_frames: int) -> list[str]:
    lines: list[str] = []
    hidden = 0
    shown = 0
    after_user = 0
    for index, frame in enumerate(frames):
        interesting = not is_core(frame)
        keep = index == 0 or interesting or after_user > 0 or frame.fn in _ALLOCATORS
        after_user = 2 if interesting else max(after_user - 1, 0)
        if not keep or shown >= max_frames:
            hidden += 1
            continue
        if hidden:
            lines.append(f"    ... {hidden} interpreter frame(s)")
            hidden = 0
        lines.append(f"    {'at' if index == 0 else 'by'} {frame}")
        shown += 1
    if hidden:
        lines.append(f"    ... {hidden} more frame(s)")
    return lines


@dataclass(frozen=True)
class GrowingRecord:
    """A loss record (matched by kind and stack) that grew between the N and 2N runs."""

    kind: str
    frames: tuple[Frame, ...]
    bytes_n: int
    bytes_2n: int
    blocks_n: int
    blocks_2n: int
    iterations: int
    suppression: str | None = field(default=None, compare=False)

    @property
    def per_iteration_bytes(self) -> float:
        """Bytes lost per iteration: ``(bytes(2N) - bytes(N)) / N``."""
        return (self.bytes_2n - self.bytes_n) / self.iterations

    @property
    def per_iteration_blocks(self) -> float:
        """Blocks lost per iteration: ``(blocks(2N) - blocks(N)) / N``."""
        return (self.blocks_2n - self.blocks_n) / self.iterations

    @property
    def short_kind(self) -> str:
        """``definite``, ``indirect`` or ``possible``."""
        return LossRecord(self.kind, 0, 0, ()).short_kind

    def format(self, max_frames: int = 12) -> str:
        """The record's headline and its stack, interpreter frames folded."""
        head = (
            f"{_KIND_WORDS.get(self.kind, self.kind)} {format_size(self.per_iteration_bytes)}/iteration "
            f"({self.per_iteration_blocks:g} blocks/iteration; {format_size(self.bytes_n)} in "
            f"{self.blocks_n} blocks after N={self.iterations}, {format_size(self.bytes_2n)} in "
            f"{self.blocks_2n} after 2N)"
        )
        return "\n".join([head, *_format_stack(self.frames, max_frames)])

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping, with the per-iteration figures and the frames."""
        return {
            "kind": self.kind,
            "per_iteration_bytes": self.per_iteration_bytes,
            "per_iteration_blocks": self.per_iteration_blocks,
            "bytes_n": self.bytes_n,
            "bytes_2n": self.bytes_2n,
            "blocks_n": self.blocks_n,
            "blocks_2n": self.blocks_2n,
            "frames": [frame.to_dict() for frame in self.frames],
            "suppression": self.suppression,
        }


@dataclass(frozen=True)
class ValgrindReport:
    """The verdict of a memcheck run of one target; ``str()`` is the short verdict.

    ``status`` is ``clean``, ``leaking`` (definitely + indirectly lost per iteration
    reached the limit), ``crashed`` (a child died by a signal or left truncated XML),
    ``timeout`` or ``failed`` (a child exited non-zero: the test failed, or the
    target could not be loaded).  For the last three, ``log_path`` names the kept log
    and ``message`` says what happened.
    """

    status: Status
    target: str
    iterations: int
    warmup: int
    per_iteration_definite: float = 0.0
    per_iteration_indirect: float = 0.0
    per_iteration_possible: float = 0.0
    records: tuple[GrowingRecord, ...] = ()
    dropped_records: int = 0
    memcheck_errors: int = 0
    log_path: str | None = None
    message: str = ""
    elapsed_seconds: float = 0.0
    min_bytes_per_iteration: float = DEFAULT_MIN_BYTES
    top: int = field(default=DEFAULT_TOP, compare=False)

    @property
    def ok(self) -> bool:
        """True only for ``clean``."""
        return self.status == "clean"

    @property
    def per_iteration_lost(self) -> float:
        """Definitely plus indirectly lost bytes per iteration."""
        return self.per_iteration_definite + self.per_iteration_indirect

    def __str__(self) -> str:
        runs = f"N={self.iterations} and 2N={2 * self.iterations} iterations after {self.warmup} warm-up"
        if self.status in ("crashed", "timeout", "failed"):
            lines = [f"valgrind memcheck: {self.status.upper()} - {self.target}: {self.message}"]
            if self.log_path:
                lines.append(f"  valgrind's log kept at {self.log_path}")
            return "\n".join(lines)
        lines = [
            f"valgrind memcheck: {self.status.upper()} - {self.target}",
            (
                f"  definitely lost {format_size(self.per_iteration_definite)}/iteration, "
                f"indirectly lost {format_size(self.per_iteration_indirect)}/iteration (limit "
                f"{format_size(self.min_bytes_per_iteration)}/iteration together); possibly lost "
                f"{format_size(self.per_iteration_possible)}/iteration (not judged)"
            ),
            (
                f"  {runs}, {self.elapsed_seconds:.1f}s; {len(self.records)} growing loss "
                f"record(s), {self.dropped_records} outside focus dropped, "
                f"{self.memcheck_errors} other memcheck error(s)"
            ),
        ]
        if self.message:
            lines.append(f"  {self.message}")
        for index, record in enumerate(self.records[: self.top], 1):
            body = record.format().replace("\n", "\n  ")
            lines.append(f"  #{index} {body}")
        if len(self.records) > self.top:
            lines.append(f"  ... {len(self.records) - self.top} more record(s) in the JSON report")
        if self.log_path:
            lines.append(f"  files kept in {self.log_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping for ``results.json``."""
        return {
            "tool": "valgrind-memcheck",
            "status": self.status,
            "target": self.target,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "per_iteration_definite": self.per_iteration_definite,
            "per_iteration_indirect": self.per_iteration_indirect,
            "per_iteration_possible": self.per_iteration_possible,
            "min_bytes_per_iteration": self.min_bytes_per_iteration,
            "records": [record.to_dict() for record in self.records],
            "dropped_records": self.dropped_records,
            "memcheck_errors": self.memcheck_errors,
            "log_path": self.log_path,
            "message": self.message,
            "elapsed_seconds": self.elapsed_seconds,
        }
