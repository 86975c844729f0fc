"""The memray window: leaked native and Python allocations, and memray's flamegraph.

One ``memray.Tracker`` records the whole window (native stacks, Python
allocators traced, aggregated file format: small, and all a leaks report
needs). At the end, ``FileReader.get_leaked_allocation_records`` gives what
was allocated inside the window and still alive after it; records are grouped
by location (the innermost user frame of their Python stack, see
:mod:`.frames`). A leak capture only knows the end state, so a site's
"tracks iterations" score is how close its leaked-allocation count is to a
whole multiple of the iteration count (:func:`.fit.count_regularity`): a site
leaking k allocations per iteration scores 1, a one-off scores ~0.

The flamegraph is memray's own reporter (``python -m memray flamegraph
--leaks --no-web``, in a subprocess so a reporter crash cannot take the test
run down; ``--no-web`` inlines its scripts so the page opens offline).

Only one tracker may be active per process: when another one is (``pytest
--memray``), the window falls back to tracemalloc and says so in a note; the
same when memray cannot be imported on this platform.

Some native memory never passes memray's hooks: ``malloc`` called through
ctypes goes straight to libc. When the native-heap measure grew but memray
attributes (almost) no native allocation, the notes say so and point at
valgrind, and no flamegraph is written (it would show only unrelated noise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import LeakcheckError, ToolMissingError
from ..results import AllocationSite, Attribution
from ..units import format_size
from .fit import MIN_BYTES_PER_ITERATION, MIN_TRACKING, count_regularity
from .frames import Frame, clean_stack, format_frame
from .tracemalloc_window import MAX_SITES, TracemallocWindow

__all__ = [
    "CAPTURE_NAME",
    "FLAMEGRAPH_NAME",
    "VALGRIND_HINT",
    "MemrayWindow",
    "memray_unavailable_reason",
    "render_flamegraph",
]

CAPTURE_NAME = "memray-leaks.bin"
FLAMEGRAPH_NAME = "flamegraph.html"
VALGRIND_HINT = "scripts/valgrind.sh NODEID or pytest --leak-valgrind NODEID"
#: Below this many native bytes per iteration attributed by memray, a native growth is "unseen".
_NATIVE_SEEN = 64.0
_PYMALLOC = frozenset({1, 2, 3, 4})  # memray.AllocatorType.PYMALLOC_*
_ALLOCATOR_WRAPPERS = frozenset(
    {"<unknown>", "malloc", "calloc", "realloc", "free", "operator new"}
)


def memray_unavailable_reason() -> str | None:
    """Why memray cannot be used here, or ``None`` when it can be imported."""
    try:
        import memray  # noqa: F401  (imported to check it loads on this platform)
    except ImportError as exc:
        return f"memray is not available on this platform ({exc})"
    return None


def render_flamegraph(capture: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write memray's leaks flamegraph of ``capture`` to ``out`` (atomically) and return ``out``.

    Raises :class:`ToolMissingError` when memray is missing and
    :class:`LeakcheckError` with memray's own message when the reporter fails.
    """
    reason = memray_unavailable_reason()
    if reason is not None:
        raise ToolMissingError("memray", f"{reason}; install it with 'pip install memray'")
    capture = Path(capture)
    out = Path(out)
    if not capture.is_file():
        raise LeakcheckError(f"{capture}: no such memray capture file")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.html")
    cmd = [sys.executable, "-m", "memray", "flamegraph", "--leaks", "--no-web", "-f"]
    cmd += ["-o", str(tmp), str(capture)]
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not tmp.is_file():
            tail = " ".join(proc.stdout.strip().splitlines()[-3:])
            raise LeakcheckError(
                f"memray flamegraph failed on {capture} (exit {proc.returncode}): {tail}"
            )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


class MemrayWindow:
    """A memray capture over the window; leaked allocations grouped into sites."""

    source = "memray"

    def __init__(
        self,
        iterations: int,
        *,
        frames: int = 25,
        capture_dir: Path | None = None,
        flamegraph: bool = False,
        keep_capture: bool = False,
        native_suspected: bool = False,
        native_growth: float | None = None,
    ) -> None:
        self.iterations = max(1, iterations)
        self.frames = frames
        self.capture_dir = None if capture_dir is None else Path(capture_dir)
        self.flamegraph = flamegraph
        self.keep_capture = keep_capture and capture_dir is not None
        self.native_suspected = native_suspected
        self.native_growth = native_growth
        self._tracker: Any = None
        self._capture: Path | None = None
        self._probe: Path | None = None
        self._switch_at = 0
        self._tmpdir: str | None = None
        self._fallback: TracemallocWindow | None = None
        self._notes: list[str] = []
        self._finished: Attribution | None = None

    def start(self) -> None:
        reason = memray_unavailable_reason()
        if reason is None:
            self._tmpdir = tempfile.mkdtemp(prefix="leakcheck-memray-")
            # Two captures: a probe over the first third, the main one over the rest.
            self._switch_at = self.iterations // 3 if self.iterations >= 3 else 0
            first = Path(self._tmpdir) / ("probe.bin" if self._switch_at else CAPTURE_NAME)
            try:
                self._begin(first)
            except RuntimeError as exc:  # "No more than one Tracker instance can be active"
                reason = f"another memray tracker is already active ({exc}; pytest --memray?)"
                self._cleanup()
            else:
                if self._switch_at:
                    self._probe = first
                else:
                    self._capture = first
                return
        self._notes.append(f"{reason}; attributed with tracemalloc instead")
        self._fallback = TracemallocWindow(self.iterations, frames=self.frames)
        self._fallback.start()

    def _begin(self, path: Path) -> None:
        import memray

        if path.exists():
            path.unlink()
        tracker = memray.Tracker(
            str(path),
            native_traces=True,
            trace_python_allocators=True,
            follow_fork=False,
            file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS,
        )
        tracker.__enter__()
        self._tracker = tracker

    def _end(self) -> None:
        if self._tracker is not None:
            tracker, self._tracker = self._tracker, None
            tracker.__exit__(None, None, None)

    def checkpoint(self, iteration: int) -> None:
        if self._fallback is not None:
            self._fallback.checkpoint(iteration)
        elif iteration == self._switch_at and self._capture is None and self._tracker is not None:
            self._end()
            if self.keep_capture and self.capture_dir is not None:
                self.capture_dir.mkdir(parents=True, exist_ok=True)
                self._capture = self.capture_dir / CAPTURE_NAME
            else:
                assert self._tmpdir is not None
                self._capture = Path(self._tmpdir) / CAPTURE_NAME
            self._begin(self._capture)

    def finish(self, iterations: int) -> Attribution:
        if self._finished is not None:
            return self._finished
        if self._fallback is not None:
            inner = self._fallback.finish(iterations)
            self._finished = Attribution(
                sites=inner.sites,
                notes=tuple(self._notes) + inner.notes,
                window_iterations=iterations,
            )
            return self._finished
        try:
            self._end()
            if self._capture is None:  # finished before the switch: the probe is all there is
                self._capture, self._probe, self._switch_at = self._probe, None, 0
            sites, native_per_iteration = self._read(iterations - self._switch_at)
            flame: str | None = None
            unseen = self.native_suspected and (
                native_per_iteration < _NATIVE_SEEN
                or (
                    self.native_growth is not None and native_per_iteration < self.native_growth / 4
                )
            )
            if unseen:
                grew = (
                    f" by {format_size(self.native_growth)}/iteration"
                    if self.native_growth is not None
                    else ""
                )
                self._notes.append(
                    f"the native heap grew{grew} but memray saw only "
                    f"{format_size(native_per_iteration)}/iteration of native allocations leak: "
                    "memory allocated where memray's hooks cannot see it (libc malloc called "
                    "through ctypes, or a library with its own allocator) is invisible to it; "
                    f"run it under valgrind to find it: {VALGRIND_HINT}"
                )
                if self.flamegraph:
                    self._notes.append("no flamegraph written: it would not show the native leak")
            elif self.flamegraph and self.capture_dir is not None and self._capture is not None:
                try:
                    out = render_flamegraph(self._capture, self.capture_dir / FLAMEGRAPH_NAME)
                    flame = str(out)
                except LeakcheckError as exc:
                    self._notes.append(f"no flamegraph: {exc}")
            self._finished = Attribution(
                sites=sites,
                notes=tuple(self._notes),
                flamegraph=flame,
                window_iterations=iterations,
            )
            return self._finished
        finally:
            self._end()
            self._cleanup()  # the temp dir; a kept capture lives in capture_dir

    @property
    def capture(self) -> Path | None:
        """The capture file, while it exists (kept only with ``keep_capture``)."""
        return self._capture if self._capture is not None and self._capture.exists() else None

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _groups(self, capture: Path) -> dict[Frame, dict[str, Any]]:
        import memray

        groups: dict[Frame, dict[str, Any]] = {}
        with memray.FileReader(str(capture)) as reader:
            for record in reader.get_leaked_allocation_records(merge_threads=True):
                key, traceback = self._place(record)
                if key is None:
                    continue
                group = groups.get(key)
                if group is None:
                    group = groups[key] = {"size": 0, "count": 0, "native": 0, "tb": (), "best": -1}
                group["size"] += record.size
                group["count"] += record.n_allocations
                if record.allocator not in _PYMALLOC:
                    group["native"] += record.size
                if record.size > group["best"]:
                    group["best"] = record.size
                    group["tb"] = traceback
        return groups

    def _read(self, iterations: int) -> tuple[tuple[AllocationSite, ...], float]:
        """Sites from the leaked records, and native bytes/iteration attributed to leaking sites.

        With a probe capture (the first third of the window), a site's score
        compares its leak *rate* in the two captures: a leak leaks as fast in
        both; a bounded cache that churns leaves the same count in both, so
        half the rate in the twice-as-long main capture; a one-off is in one.
        """
        assert self._capture is not None
        groups = self._groups(self._capture)
        probe = self._groups(self._probe) if self._probe is not None else None
        n = max(1, iterations)
        sites: list[AllocationSite] = []
        native = 0.0
        for location, group in groups.items():
            per_iteration = group["size"] / n
            if probe is None:
                score = count_regularity(group["count"], n)
            else:
                early = probe.get(location, {}).get("count", 0) / max(1, self._switch_at)
                late = group["count"] / n
                ratio = min(early, late) / max(early, late) if early and late else 0.0
                score = max(0.0, 2.0 * ratio - 1.0)  # churn gives ratio 1/2 -> 0; a leak 1 -> 1
            if per_iteration < MIN_BYTES_PER_ITERATION or score < MIN_TRACKING:
                continue
            native += group["native"] / n
            sites.append(
                AllocationSite(
                    source="memray",
                    location=format_frame(location, source=False),
                    traceback=group["tb"],
                    bytes_per_iteration=per_iteration,
                    blocks_per_iteration=group["count"] / n,
                    correlation=round(score, 3),
                )
            )
        sites.sort(key=lambda s: -s.bytes_per_iteration)
        return tuple(sites[:MAX_SITES]), native

    def _place(self, record: Any) -> tuple[Frame | None, tuple[str, ...]]:
        """A record's location and traceback (innermost last), or ``(None, ())`` to drop it."""
        python = [(f, ln, fn) for fn, f, ln in record.stack_trace(max_stacks=self.frames)]
        natives: list[str] = []
        try:
            for function, filename, lineno in record.native_stack_trace(max_stacks=12):
                if function in _ALLOCATOR_WRAPPERS:
                    continue
                if "_PyEval_EvalFrame" in function or function.startswith("Py") and natives:
                    break
                where = f" at {os.path.basename(filename)}:{lineno}" if lineno else ""
                natives.append(f"[native] {function}{where}")
                if len(natives) >= 6:
                    break
        except (RuntimeError, ValueError, NotImplementedError):  # no native trace in this capture
            natives = []
        if python:
            cleaned = clean_stack(python)
            if cleaned is None:
                return None, ()
            kept, location = cleaned
            return location, tuple(format_frame(f) for f in kept) + tuple(reversed(natives))
        if not natives:
            return None, ()
        # No Python frame (a native thread, or the interpreter itself): name the native function.
        name = natives[0][len("[native] ") :]
        return (name, 0, ""), tuple(reversed(natives))
