"""The tracemalloc window: Python allocation sites whose live size grows with the iterations.

Snapshots are taken at the window's start and at eight evenly spaced
checkpoints; each is reduced at once to live bytes and blocks per *location*
(the innermost user frame, see :mod:`.frames`) and then dropped, so the window
holds a few small dicts, not snapshots. The fit uses only the second half of
the window: tracing starts with the window, so a bounded cache that churns
replaces untraced entries by traced ones and *looks* like growth until it has
turned over once; by the second half it is flat. A site counts as leaking when
its size rises by at least a few bytes per iteration and tracks the iteration
count (:func:`.fit.tracking`).

If tracemalloc was already tracing (the user started it), the window keeps it
running with its frame limit and only reads snapshots; otherwise it starts
tracemalloc with ``frames`` frames and stops it at the end.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Sequence
from typing import Optional

from ..results import AllocationSite, Attribution
from .fit import MIN_BYTES_PER_ITERATION, MIN_TRACKING, slope, tracking
from .frames import DEFAULT_CODE, CodeMap, Frame, clean_stack, format_frame, via_of

__all__ = ["MAX_SITES", "TracemallocWindow", "snapshot_points"]

MAX_SITES = 10

_Cleaned = Optional[tuple[tuple[Frame, ...], Frame]]


def snapshot_points(iterations: int, count: int = 8) -> list[int]:
    """The iterations after which a snapshot is taken: 0 and ``count`` evenly spaced points."""
    if iterations <= count:
        return list(range(iterations + 1))
    return sorted({0} | {round(iterations * j / count) for j in range(1, count + 1)})


class TracemallocWindow:
    """Snapshots at a few checkpoints; sites ranked by growth per iteration."""

    source = "tracemalloc"

    def __init__(
        self,
        iterations: int,
        *,
        frames: int = 25,
        notes: Sequence[str] = (),
        code: CodeMap = DEFAULT_CODE,
    ) -> None:
        self.iterations = max(1, iterations)
        self.frames = frames
        self.code = code
        self._points = set(snapshot_points(self.iterations))
        self._readings: list[tuple[int, dict[Frame, list[int]]]] = []
        self._tracebacks: dict[Frame, tuple[tuple[Frame, ...], int]] = {}
        self._cache: dict[tuple[tuple[str, int], ...], _Cleaned] = {}
        self._started_tracing = False
        self._notes: list[str] = list(notes)
        self._cost = 0.0
        self._finished: Attribution | None = None

    def start(self) -> None:
        if tracemalloc.is_tracing():
            limit = tracemalloc.get_traceback_limit()
            if limit < self.frames:
                self._notes.append(
                    f"tracemalloc was already tracing with {limit} frame(s); kept it running, "
                    f"so tracebacks are at most {limit} deep (leakcheck would use {self.frames})"
                )
        else:
            tracemalloc.start(self.frames)
            self._started_tracing = True
        self._take(0)

    def checkpoint(self, iteration: int) -> None:
        if iteration in self._points and iteration > 0 and self._finished is None:
            self._take(iteration)

    def finish(self, iterations: int) -> Attribution:
        if self._finished is not None:
            return self._finished
        if not self._readings or self._readings[-1][0] != iterations:
            self._take(iterations)
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False
        self._finished = Attribution(sites=self._sites(), notes=tuple(self._notes), window_iterations=iterations)
        return self._finished

    @property
    def snapshot_seconds(self) -> float:
        """Time spent taking and reducing snapshots (the window's own cost)."""
        return self._cost

    def _clean(self, raw: tuple[tuple[str, int], ...]) -> _Cleaned:
        cleaned = clean_stack([(filename, lineno, "") for filename, lineno in raw], self.code)
        self._cache[raw] = cleaned
        return cleaned

    def _take(self, iteration: int) -> None:
        began = time.perf_counter()
        snapshot = tracemalloc.take_snapshot()
        raw_traces = getattr(snapshot.traces, "_traces", None)
        if raw_traces is None:  # another implementation: the public, slower way
            raw_traces = [
                (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
                for t in snapshot.traces
            ]
        del snapshot
        per_location: dict[Frame, list[int]] = {}
        per_traceback: dict[tuple[tuple[Frame, ...], Frame], int] = {}
        cache = self._cache
        for trace in raw_traces:
            raw = trace[2]  # most recent frame first
            cleaned = cache[raw] if raw in cache else self._clean(raw)
            if cleaned is None:
                continue
            kept, location = cleaned
            acc = per_location.get(location)
            if acc is None:
                per_location[location] = [trace[1], 1]
            else:
                acc[0] += trace[1]
                acc[1] += 1
            per_traceback[cleaned] = per_traceback.get(cleaned, 0) + trace[1]
        del raw_traces
        for (kept, location), size in per_traceback.items():
            best = self._tracebacks.get(location)
            if best is None or size > best[1]:
                self._tracebacks[location] = (kept, size)
        self._readings.append((iteration, per_location))
        self._cost += time.perf_counter() - began

    def _sites(self) -> tuple[AllocationSite, ...]:
        if len(self._readings) < 2:
            return ()
        last = self._readings[-1][0]
        fit = [r for r in self._readings if r[0] >= last / 2]
        if len(fit) < 3:
            fit = self._readings
        xs = [float(i) for i, _ in fit]
        locations = set().union(*(readings.keys() for _, readings in fit))
        sites = []
        for location in locations:
            sizes = [float(readings.get(location, (0, 0))[0]) for _, readings in fit]
            counts = [float(readings.get(location, (0, 0))[1]) for _, readings in fit]
            per_iteration = slope(xs, sizes)
            if per_iteration < MIN_BYTES_PER_ITERATION:
                continue
            score = max(tracking(xs, sizes), tracking(xs, counts))
            if score < MIN_TRACKING:
                continue
            kept = self._tracebacks.get(location, ((location,), 0))[0]
            via = via_of(kept, location, self.code)
            sites.append(
                AllocationSite(
                    source="tracemalloc",
                    location=format_frame(location, source=False),
                    traceback=tuple(format_frame(f) for f in kept),
                    bytes_per_iteration=per_iteration,
                    blocks_per_iteration=max(0.0, slope(xs, counts)),
                    correlation=round(min(1.0, score), 3),
                    via="" if via is None else format_frame(via, source=False),
                    user_code=self.code.kind(location[0]) == "user",
                )
            )
        # The user's lines first, then sites inside libraries only.
        sites.sort(key=lambda s: (not s.user_code, -s.bytes_per_iteration))
        return tuple(sites[:MAX_SITES])
