"""Where it grows: a second, shorter window traced by tracemalloc and/or memray.

Detection (the runner's cheap counters) decides *whether* something grows;
attribution runs only when growth is suspected or a report asks for it, and
says *where*. The runner opens a window with :func:`open_window` and calls
``start()`` right before the window's first iteration, ``checkpoint(i)``
after each iteration ``i`` (after its ``gc.collect()``), and ``finish(n)``
after the last, which stops tracing and returns an
:class:`~leakcheck.results.Attribution`.

Modes, and why:

``"tracemalloc"``
    Python allocations only, but with a live series: snapshots at a few
    checkpoints let us fit each site's size against the iteration count, so a
    leak (grows every interval) is told from a one-off or a plateau.
``"memray"``
    Native *and* Python allocations, with native stacks, plus memray's leaks
    flamegraph. Memray only knows the end state (what was allocated in the
    window and not freed), so it is the better source for native growth and
    the picture, not for telling a leak from a one-off.
``"both"``
    Both, as **two separate windows**: tracemalloc over the first half of the
    iterations, memray over the second half. Never both at once: each tracer's
    bookkeeping would be allocations in the other's eyes, and each slows the
    step (tracemalloc with 25 frames ~10x on allocation-heavy code, memray with
    Python allocators ~3x), so the counts would stop meaning anything.
``"auto"`` (the default)
    ``"both"`` when the native heap grew (``native_suspected``) or a
    flamegraph is wanted and memray can be used; ``"tracemalloc"`` otherwise.
``"off"``
    No tracing; ``finish`` returns an empty attribution.

When memray cannot be imported, or another tracker is already active (pytest
--memray), a memray window falls back to tracemalloc with a one-line note; it
never raises. A capture file lives in a temp directory and is deleted at
``finish`` unless ``keep_capture`` puts it in ``capture_dir``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError
from ..results import Attribution, Retention
from .frames import CodeMap, Frame
from .memray_window import (
    CAPTURE_NAME,
    FLAMEGRAPH_NAME,
    VALGRIND_HINT,
    MemrayWindow,
    memray_unavailable_reason,
    render_flamegraph,
)
from .retention import RetentionWatch
from .tracemalloc_window import MAX_SITES, TracemallocWindow

__all__ = [
    "CAPTURE_NAME",
    "FLAMEGRAPH_NAME",
    "MODES",
    "VALGRIND_HINT",
    "CodeMap",
    "MemrayWindow",
    "RetentionWatch",
    "TracemallocWindow",
    "Window",
    "memray_unavailable_reason",
    "merge_attributions",
    "open_window",
    "render_flamegraph",
    "with_retention",
]

MODES = ("auto", "tracemalloc", "memray", "both", "off")


class Window(Protocol):
    """One attribution window, driven by the runner around the step's iterations."""

    def start(self) -> None:
        """Right before iteration 1 of the window."""

    def checkpoint(self, iteration: int) -> None:
        """After iteration ``iteration`` (1..n), right after the runner's ``gc.collect()``."""

    def finish(self, iterations: int) -> Attribution:
        """After the last iteration: stop tracing, return sites, notes and the flamegraph path."""


class _OffWindow:
    def __init__(self, note: str = "") -> None:
        self._notes = (note,) if note else ()

    def start(self) -> None:
        pass

    def checkpoint(self, iteration: int) -> None:
        pass

    def finish(self, iterations: int) -> Attribution:
        return Attribution(notes=self._notes, window_iterations=iterations)


class _SplitWindow:
    """tracemalloc over iterations 1..k, then memray over k+1..n: two windows, one loop."""

    def __init__(self, first: TracemallocWindow, second: MemrayWindow, switch_at: int) -> None:
        self.first = first
        self.second = second
        self.switch_at = switch_at
        self._first_result: Attribution | None = None

    def start(self) -> None:
        self.first.start()

    def checkpoint(self, iteration: int) -> None:
        if self._first_result is None:
            self.first.checkpoint(iteration)
            if iteration >= self.switch_at:
                self._first_result = self.first.finish(iteration)
                self.second.start()
        else:
            self.second.checkpoint(iteration - self.switch_at)

    def finish(self, iterations: int) -> Attribution:
        if self._first_result is None:  # stopped before the switch: no memray half
            return self.first.finish(iterations)
        second = self.second.finish(iterations - self.switch_at)
        merged = merge_attributions([self._first_result, second])
        return dataclasses.replace(merged, window_iterations=iterations)


class _WatchedWindow:
    """Another window, with the threads started in it linked to the stacks that started them."""

    def __init__(self, inner: Window, code: CodeMap) -> None:
        self.inner = inner
        self.code = code

    def _started(self, thread: threading.Thread) -> None:
        target = getattr(thread, "_target", None) or type(thread).run
        frame = sys._getframe(1)
        stack: list[Frame] = []
        while frame is not None and len(stack) < 40:
            stack.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
            frame = frame.f_back  # type: ignore[assignment]
        self.code.started(target, stack)

    def start(self) -> None:
        from ..handles import RECORDER

        RECORDER.thread_listeners.append(self._started)
        self.inner.start()

    def checkpoint(self, iteration: int) -> None:
        self.inner.checkpoint(iteration)

    def finish(self, iterations: int) -> Attribution:
        from ..handles import RECORDER

        try:
            return self.inner.finish(iterations)
        finally:
            if self._started in RECORDER.thread_listeners:
                RECORDER.thread_listeners.remove(self._started)


def with_retention(attribution: Attribution, retention: Retention | None) -> Attribution:
    """``attribution`` with what keeps the growth alive; an unheld reference gets memray's native frame."""
    if retention is not None and retention.unheld:
        native = _extension_frame(attribution)
        if native:
            retention = dataclasses.replace(retention, unheld=f"{retention.unheld}; allocated in {native}")
    return dataclasses.replace(attribution, retention=retention)


def _extension_frame(attribution: Attribution) -> str:
    """The innermost native frame of memray's top site that is in an extension, not the interpreter."""
    for site in attribution.sites:
        if site.source != "memray":
            continue
        for line in reversed(site.traceback):
            if line.startswith("[native] ") and ".so" in line and "libpython" not in line:
                return line[len("[native] ") :]
    return ""


def merge_attributions(parts: list[Attribution]) -> Attribution:
    """One attribution from several windows (e.g. xdist-free reruns, or the two halves of "both")."""
    # The user's lines first, then sites inside libraries only; each by size.
    sites = sorted((s for p in parts for s in p.sites), key=lambda s: (not s.user_code, -s.bytes_per_iteration))
    notes: list[str] = []
    for p in parts:
        notes.extend(n for n in p.notes if n not in notes)
    flame = next((p.flamegraph for p in parts if p.flamegraph), None)
    retention = next((p.retention for p in parts if p.retention is not None), None)
    return Attribution(
        sites=tuple(sites[: 2 * MAX_SITES]),
        notes=tuple(notes),
        flamegraph=flame,
        window_iterations=sum(p.window_iterations for p in parts),
        retention=retention,
    )


def open_window(
    mode: str,
    *,
    iterations: int,
    frames: int = 25,
    capture_dir: Path | None = None,
    flamegraph: bool = False,
    native_suspected: bool = False,
    keep_capture: bool = False,
    native_growth: float | None = None,
    mapped_growth: float | None = None,
    user_paths: Sequence[str | os.PathLike[str]] = (),
    valgrind_command: str = "",
    defer_flamegraph: bool = False,
) -> Window:
    """A window over ``iterations`` iterations in ``mode`` (see the module docstring).

    ``capture_dir`` is where the flamegraph HTML (and, with ``keep_capture``, the
    memray capture) goes; ``None`` keeps neither. ``native_suspected`` says the
    native-heap measure grew; ``native_growth`` (bytes/iteration, optional) lets
    the window tell when memray saw only part of it; ``mapped_growth`` (the
    mapped-memory measure's, when it leaked) asks memray for the ``mmap`` calls
    left mapped, or points at valgrind when it saw none. ``user_paths`` are the
    folders of the user's code (see :class:`.frames.CodeMap`); ``valgrind_command`` is
    the command the notes suggest when memray cannot see a native leak.
    ``defer_flamegraph`` keeps the capture in ``capture_dir`` instead of rendering
    the flamegraph (the report renders the worst few later). Raises
    :class:`ConfigError` for an unknown mode or a bad ``iterations``/``frames``.
    """
    code = CodeMap([os.fspath(p) for p in user_paths])
    capture = None if capture_dir is None else Path(capture_dir)
    inner = _open(
        mode,
        iterations,
        frames,
        capture,
        flamegraph,
        native_suspected,
        keep_capture,
        native_growth,
        mapped_growth,
        code,
        valgrind_command,
        defer_flamegraph,
    )
    if isinstance(inner, _OffWindow):
        return inner
    return _WatchedWindow(inner, code)


def _open(
    mode: str,
    iterations: int,
    frames: int,
    capture: Path | None,
    flamegraph: bool,
    native_suspected: bool,
    keep_capture: bool,
    native_growth: float | None,
    mapped_growth: float | None,
    code: CodeMap,
    valgrind_command: str,
    defer_flamegraph: bool,
) -> Window:
    if mode not in MODES:
        raise ConfigError("attribution", mode, f"unknown mode; use one of {', '.join(MODES)}")
    if not isinstance(iterations, int) or iterations < 1:
        raise ConfigError("attribution iterations", iterations, "must be an integer >= 1")
    if not isinstance(frames, int) or frames < 1:
        raise ConfigError("attribution frames", frames, "must be an integer >= 1")
    if mode == "off":
        return _OffWindow()
    if mode == "auto":
        wants_memray = native_suspected or mapped_growth is not None or (flamegraph and capture is not None)
        if wants_memray and memray_unavailable_reason() is None:
            mode = "both"
        else:
            mode = "tracemalloc"

    def memray_window(n: int) -> MemrayWindow:
        return MemrayWindow(
            n,
            frames=frames,
            capture_dir=capture,
            flamegraph=flamegraph,
            keep_capture=keep_capture,
            native_suspected=native_suspected,
            native_growth=native_growth,
            mapped_growth=mapped_growth,
            code=code,
            valgrind_command=valgrind_command,
            defer_flamegraph=defer_flamegraph,
        )

    if mode == "tracemalloc":
        note = (
            "the native heap grew; tracemalloc sees Python allocations only "
            "(attribution mode 'memray' or 'both' shows native ones)"
        )
        mapped_note = (
            "mapped memory grew; tracemalloc does not see mmap calls (memray does, with attribution "
            f"'memray' or 'both', where its hooks reach; otherwise valgrind: {valgrind_command or VALGRIND_HINT})"
        )
        notes = ([note] if native_suspected else []) + ([mapped_note] if mapped_growth is not None else [])
        return TracemallocWindow(iterations, frames=frames, notes=notes, code=code)
    if mode == "memray" or iterations < 4:
        return memray_window(iterations)
    half = iterations // 2
    return _SplitWindow(TracemallocWindow(half, frames=frames, code=code), memray_window(iterations - half), half)
