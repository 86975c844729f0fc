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

The flamegraph is memray's own reporter, fed the leaked records with their
stacks trimmed to the step and the harness's own allocations left out
(:mod:`.flame`, in a subprocess so a reporter crash cannot take the test run
down; ``no_web`` inlines its scripts so the page opens offline).
It costs seconds a page, so a whole-suite run defers it (``defer_flamegraph``):
the window keeps its capture (a few KiB) in ``capture_dir`` and the report
renders the worst few (:mod:`leakcheck.report.flames`).

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import LeakcheckError, ToolMissingError
from ..results import AllocationSite, Attribution
from ..units import format_size
from .fit import MIN_BYTES_PER_ITERATION, MIN_TRACKING, count_regularity
from .frames import DEFAULT_CODE, CodeMap, Frame, clean_stack, format_frame, via_of
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
#: The command suggested when the test's own id is not known; the runner passes the exact one.
VALGRIND_HINT = "leakcheck valgrind TARGET 5"
#: How long no other thread may ask for the GIL while a tracker starts or stops (seconds).
_HOLD_GIL_FOR = 0.25


@contextmanager
def _gil_kept() -> Iterator[None]:
    """Keep the GIL on this thread while memray installs or removes its profile hooks.

    Before Python 3.13 memray walks the interpreter's thread states, raising
    the ``sys.setprofile`` audit event at each, so leakcheck's audit hook runs
    Python code inside the walk. Were the GIL handed over there, a thread on
    its way out (aiosqlite's worker, a moment after ``close()``) could free
    its thread state under the walk: memray 1.20 then reads freed memory and
    the process dies (SIGSEGV). Other threads ask for the GIL only after the
    switch interval, counted from the last hand-over; so lengthen it, hand
    over once (which also settles a request already pending), and restore it.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(max(previous, _HOLD_GIL_FOR))
    try:
        time.sleep(0.001)
        yield
    finally:
        sys.setswitchinterval(previous)
        time.sleep(0)  # wakes a waiter, which waits on with the usual interval


#: Below this many native bytes per iteration attributed by memray, a native growth is "unseen".
_NATIVE_SEEN = 64.0
_PYMALLOC = frozenset({1, 2, 3, 4})  # memray.AllocatorType.PYMALLOC_*
_MMAP = 14  # memray.AllocatorType.MMAP
_ALLOCATOR_WRAPPERS = frozenset({"<unknown>", "malloc", "calloc", "realloc", "free", "operator new"})


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
    # memray's own reporter, fed records trimmed to the step (see :mod:`.flame`).
    cmd = [sys.executable, "-m", "leakcheck.attribution.flame", str(capture), str(tmp)]
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
            raise LeakcheckError(f"memray flamegraph failed on {capture} (exit {proc.returncode}): {tail}")
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
        mapped_growth: float | None = None,
        code: CodeMap = DEFAULT_CODE,
        valgrind_command: str = "",
        defer_flamegraph: bool = False,
    ) -> None:
        self.iterations = max(1, iterations)
        self.code = code
        self.valgrind_command = valgrind_command or VALGRIND_HINT
        self.frames = frames
        self.capture_dir = None if capture_dir is None else Path(capture_dir)
        self.flamegraph = flamegraph
        self.keep_capture = keep_capture and capture_dir is not None
        self.native_suspected = native_suspected
        self.native_growth = native_growth
        #: the mapped-memory measure's growth (bytes/iteration) when it leaked: say whether memray saw the mmap
        self.mapped_growth = mapped_growth
        self._mapped: list[tuple[str, float]] = []  # (location, bytes/iteration left mapped), from _read
        #: keep the capture in capture_dir for a later render instead of rendering now
        self.defer_flamegraph = defer_flamegraph and flamegraph and capture_dir is not None
        self._tracker: Any = None
        self._capture: Path | None = None
        self._probe: Path | None = None
        self._switch_at = 0
        self._tmpdir: str | None = None
        self._fallback: TracemallocWindow | None = None
        self._notes: list[str] = []
        self._finished: Attribution | None = None
        self._python_seen = 0.0  #: bytes/iteration of every leaked allocation memray saw

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
        self._fallback = TracemallocWindow(self.iterations, frames=self.frames, code=self.code)
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
        with _gil_kept():
            tracker.__enter__()
        self._tracker = tracker

    def _end(self) -> None:
        if self._tracker is not None:
            tracker, self._tracker = self._tracker, None
            with _gil_kept():
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
            explained = self.native_growth is not None and self._python_seen >= self.native_growth
            unseen = (
                self.native_suspected
                and not explained
                and (
                    native_per_iteration < _NATIVE_SEEN
                    or (self.native_growth is not None and native_per_iteration < self.native_growth / 4)
                )
            )
            if unseen:
                grew = f" by {format_size(self.native_growth)}/iteration" if self.native_growth is not None else ""
                self._notes.append(
                    f"the native heap grew{grew} but memray saw only "
                    f"{format_size(native_per_iteration)}/iteration of native allocations leak: "
                    "memory allocated where memray's hooks cannot see it (libc malloc called "
                    "through ctypes, or a library with its own allocator) is invisible to it; "
                    f"run it under valgrind to find it: {self.valgrind_command}"
                )
                if self.flamegraph:
                    self._notes.append("no flamegraph written: it would not show the native leak")
            elif self.defer_flamegraph and self.capture_dir is not None and self._capture is not None:
                kept = self.capture_dir / CAPTURE_NAME
                if self._capture != kept:
                    self.capture_dir.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(self._capture), kept)
                    self._capture = kept
            elif self.flamegraph and self.capture_dir is not None and self._capture is not None:
                try:
                    out = render_flamegraph(self._capture, self.capture_dir / FLAMEGRAPH_NAME)
                    flame = str(out)
                except LeakcheckError as exc:
                    self._notes.append(f"no flamegraph: {exc}")
            if self.mapped_growth is not None:
                self._notes.append(self._mapped_note(self.mapped_growth))
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

    def _mapped_note(self, growth: float) -> str:
        """Whether memray saw the mappings the mapped-memory measure grew by, and where."""
        seen = sum(b for _, b in self._mapped)
        grew = f"mapped memory grew by {format_size(growth)}/iteration"
        if self._mapped and seen >= growth / 4:
            where = ", ".join(f"{loc} ({format_size(b)}/iteration)" for loc, b in self._mapped[:3])
            return f"{grew}; memray saw mmap calls left mapped at {where}"
        return (
            f"{grew} but memray saw only {format_size(seen)}/iteration of mmap calls left mapped: "
            "a mapping made where memray's hooks cannot see it (mmap called through ctypes, or a "
            f"raw syscall) is invisible to it; run it under valgrind to find it: {self.valgrind_command}"
        )

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
                key, traceback, via = self._place(record)
                if key is None:
                    continue
                group = groups.get(key)
                if group is None:
                    group = groups[key] = {
                        "size": 0,
                        "count": 0,
                        "native": 0,
                        "mapped": 0,
                        "tb": (),
                        "best": -1,
                        "via": "",
                    }
                group["size"] += record.size
                group["count"] += record.n_allocations
                if record.allocator not in _PYMALLOC:
                    group["native"] += record.size
                if record.allocator == _MMAP:
                    group["mapped"] += record.size
                if record.size > group["best"]:
                    group["best"] = record.size
                    group["tb"] = traceback
                    group["via"] = via
        return groups

    def _read(self, iterations: int) -> tuple[tuple[AllocationSite, ...], float]:
        """Sites from the leaked records, and native bytes/iteration memray saw leak in the window.

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
        self._mapped = sorted(
            ((format_frame(loc, source=False), g["mapped"] / n) for loc, g in groups.items() if g["mapped"]),
            key=lambda m: -m[1],
        )
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
                    via=group["via"],
                    user_code=location[1] > 0 and self.code.kind(location[0]) == "user",
                )
            )
        sites.sort(key=lambda s: (not s.user_code, -s.bytes_per_iteration))
        # Python objects and buffers over 512 bytes live on the malloc heap too: when memray saw
        # the Python heap leak at least as much as the native heap grew, that explains it.
        self._python_seen = sum(g["size"] for g in groups.values()) / n
        return tuple(sites[:MAX_SITES]), native

    def _place(self, record: Any) -> tuple[Frame | None, tuple[str, ...], str]:
        """A record's location, traceback (innermost last) and "via" frame, or ``(None, (), "")`` to drop it."""
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
            cleaned = clean_stack(python, self.code)
            if cleaned is None:
                return None, (), ""
            kept, location = cleaned
            via = via_of(kept, location, self.code)
            shown = "" if via is None else format_frame(via, source=False)
            return location, tuple(format_frame(f) for f in kept) + tuple(reversed(natives)), shown
        if not natives:
            return None, (), ""
        # No Python frame (a native thread, or the interpreter itself): name the native function.
        name = natives[0][len("[native] ") :]
        return (name, 0, ""), tuple(reversed(natives)), ""
