"""The leaks flamegraph of a memray capture, rooted at the step, with memray's own reporter.

Run as ``python -m leakcheck.attribution.flame CAPTURE OUT`` (in a child
process, so a reporter crash cannot take the test run down). Each leaked
record's stack is trimmed before memray's ``FlameGraphReporter`` sees it:

* a record whose innermost Python frame is the harness's (leakcheck's own
  bookkeeping during the window: reading ``/proc/self/fd``, a set of
  targets) is left out;
* everything above the step is cut: interpreter start-up, pytest, pluggy,
  xdist and leakcheck frames, and the interpreter's native frames that
  called into the step; a thread's bootstrap frames likewise.

So the widest frame under the root is the step, and the picture adds up to
what the step leaked.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .frames import DEFAULT_CODE, CodeMap

__all__ = ["main", "trim_stack", "write_flamegraph"]

#: ``(function, filename, lineno)`` as memray gives hybrid stack elements, innermost first.
Element = tuple[str, str, int]


def _python(element: Element) -> bool:
    filename = element[1]
    return filename.endswith(".py") or filename.startswith("<frozen ")


def trim_stack(stack: Sequence[Element], code: CodeMap = DEFAULT_CODE) -> tuple[Element, ...] | None:
    """``stack`` (innermost first) from the step inwards, or ``None`` for the harness's own allocation."""
    python = [e for e in stack if _python(e)]
    if python and code.kind(python[0][1]) == "harness":
        return None
    if not python:
        return tuple(stack)  # a native thread: nothing of ours above it
    outer = list(reversed(stack))
    harness = [i for i, e in enumerate(outer) if _python(e) and code.kind(e[1]) == "harness"]
    start = harness[-1] + 1 if harness else 0
    # Then the interpreter's native frames and the loop or thread bootstrap that only call the step.
    i = start
    while i < len(outer) and (not _python(outer[i]) or code.kind(outer[i][1]) == "caller"):
        i += 1
    kept = outer[i:] if i < len(outer) else outer[start:]
    if harness and not any(_python(e) and code.kind(e[1]) in ("user", "library") for e in kept):
        return None  # the harness calling the standard library (os.path.isdir, readlink)
    return tuple(reversed(kept)) if kept else None


class _Trimmed:
    """A leaked-allocation record with its stack trimmed, as the reporter reads records."""

    def __init__(self, record: Any, stack: tuple[Element, ...]) -> None:
        self.tid = record.tid
        self.thread_name = record.thread_name
        self.size = record.size
        self.n_allocations = record.n_allocations
        self.allocator = record.allocator
        self._stack = stack

    def hybrid_stack_trace(self, max_stacks: int | None = None) -> list[Element]:
        return list(self._stack if max_stacks is None else self._stack[:max_stacks])

    def stack_trace(self, max_stacks: int | None = None) -> list[Element]:
        python = [e for e in self._stack if _python(e)]
        return python if max_stacks is None else python[:max_stacks]


def write_flamegraph(capture: str, out: str) -> int:
    """Write the trimmed leaks flamegraph of ``capture`` to ``out``; return how many records were kept."""
    from memray import FileReader
    from memray.reporters.flamegraph import FlameGraphReporter

    reader = FileReader(capture)
    native = reader.metadata.has_native_traces
    records: list[Any] = []
    for record in reader.get_leaked_allocation_records(merge_threads=True):
        stack = tuple(record.hybrid_stack_trace() if native else record.stack_trace())
        trimmed = trim_stack(stack)
        if trimmed is not None:
            records.append(_Trimmed(record, trimmed))
    reporter = FlameGraphReporter.from_snapshot(
        records, memory_records=tuple(reader.get_memory_snapshots()), native_traces=native
    )
    with open(out, "w", encoding="utf-8") as fh:
        reporter.render(
            outfile=fh,
            metadata=reader.metadata,
            show_memory_leaks=True,
            merge_threads=True,
            inverted=False,
            no_web=True,
        )
    return len(records)


def main(argv: Sequence[str] | None = None) -> int:
    """``CAPTURE OUT``: exit 0 when written, 1 (with memray's message) when it failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m leakcheck.attribution.flame CAPTURE OUT", file=sys.stderr)
        return 2
    try:
        write_flamegraph(args[0], args[1])
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if Path(args[1]).is_file() else 1


if __name__ == "__main__":
    raise SystemExit(main())
