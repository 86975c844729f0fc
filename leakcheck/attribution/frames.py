"""Which stack frames belong to the code under test, and how to show them.

Both tracers report whole stacks. Most frames are ours or the test runner's
(leakcheck, pytest, pluggy, xdist, tracemalloc, memray), and an async or
threaded step adds event-loop and thread-bootstrap frames below the user's
code. :func:`clean_stack` drops the first everywhere and the second where they
are only the caller, so what is left starts at the user's code; the innermost
frame outside the standard library is the site's *location*.

A stack whose innermost frame is harness code is the harness's own
allocation (a snapshot, a dict of counters) and is dropped as a whole: this is
what keeps the tracer from attributing its own bookkeeping to whoever called
:func:`leakcheck.check`.
"""

from __future__ import annotations

import linecache
import os
import re
import sysconfig
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["DEFAULT_CODE", "CodeMap", "Frame", "clean_stack", "display_path", "format_frame", "via_of"]

#: ``(filename, lineno, function)``; function is ``""`` when the tracer does not know it.
Frame = tuple[str, int, str]

#: Installed distributions (top-level names under site-packages) that are harness, not user code.
_HARNESS_PACKAGES = frozenset(
    {"_pytest", "pytest", "pluggy", "xdist", "execnet", "memray", "pytest_memray", "pytest_asyncio"}
)
_SITE_DIR = re.compile(r"[\\/](?:site|dist)-packages[\\/]([^\\/]+)")
_HARNESS_FILES = ("tracemalloc.py", "runpy.py")
_CALLER_PARTS = (os.sep + "asyncio" + os.sep, os.sep + "concurrent" + os.sep)
_CALLER_FILES = ("threading.py", "selectors.py", "contextvars.py", "events.py")


def _paths(*names: str) -> tuple[str, ...]:
    found = set()
    for name in names:
        path = sysconfig.get_paths().get(name)
        if path:
            found.add(os.path.realpath(path) + os.sep)
            found.add(path + os.sep)
    return tuple(sorted(found))


_STDLIB = _paths("stdlib", "platstdlib")
_SITE = _paths("purelib", "platlib")
_THIS_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@lru_cache(maxsize=8192)
def _kind(filename: str) -> str:
    """``"harness"``, ``"caller"`` (event loop, thread bootstrap), ``"stdlib"`` or ``"user"``."""
    if filename.startswith((_THIS_PACKAGE, "<frozen runpy")):
        return "harness"
    base = os.path.basename(filename)
    in_stdlib = filename.startswith(_STDLIB) and not filename.startswith(_SITE)
    site = _SITE_DIR.search(filename)
    if site is not None and site.group(1).split(".")[0] in _HARNESS_PACKAGES:
        return "harness"
    if in_stdlib and base in _HARNESS_FILES:
        return "harness"
    if in_stdlib and (any(p in filename for p in _CALLER_PARTS) or base in _CALLER_FILES):
        return "caller"
    if in_stdlib or filename.startswith("<frozen "):
        return "stdlib"
    return "user"


class CodeMap:
    """Which files are the user's code, and where the threads started in a window came from.

    With ``roots`` (folders: pytest's rootdir, the step's module's folder, or
    the ``user_paths`` setting), a file is the user's when it lies under one
    of them and is not installed (site-packages), standard library or
    harness; with none, any file outside those is. Other files outside the
    standard library are *library* code: a site's location is its innermost
    user frame, "via" the library frame that frame called.

    A thread's allocations have only the thread's own frames; :meth:`started`
    (called when a thread starts during the window) records the stack that
    started it, and :func:`clean_stack` puts that stack under a thread's
    frames, so an allocation in a library's worker thread is placed at the
    user's line that started it.
    """

    def __init__(self, roots: Sequence[str] = ()) -> None:
        found: set[str] = set()
        for root in roots:
            for path in (os.path.abspath(root), os.path.realpath(root)):
                found.add(path.rstrip(os.sep) + os.sep)
        self.roots = tuple(sorted(found))
        self._kinds: dict[str, str] = {}
        #: (filename, first line, last line) of a thread's entry function -> the frames that started it
        self._origins: dict[tuple[str, int, int], tuple[Frame, ...]] = {}

    def kind(self, filename: str) -> str:
        """``"harness"``, ``"caller"``, ``"stdlib"``, ``"library"`` or ``"user"``."""
        known = self._kinds.get(filename)
        if known is not None:
            return known
        kind = _kind(filename)
        if kind == "user" and (
            _SITE_DIR.search(filename) is not None
            or (
                self.roots
                and not filename.startswith(self.roots)
                and not os.path.abspath(filename).startswith(self.roots)
            )
        ):
            kind = "library"
        self._kinds[filename] = kind
        return kind

    def started(self, entry: object, stack: Sequence[Frame]) -> None:
        """Remember ``stack`` (innermost first) as the origin of threads running ``entry``."""
        code = getattr(entry, "__code__", None)
        if code is None:
            code = getattr(getattr(entry, "__func__", None), "__code__", None)
        if code is None:
            return
        lines = [line for _, _, line in code.co_lines() if line is not None]
        key = (code.co_filename, code.co_firstlineno, max(lines, default=code.co_firstlineno))
        if key not in self._origins:
            self._origins[key] = tuple(f for f in stack if self.kind(f[0]) != "harness")

    def origin_of(self, frame: Frame) -> tuple[Frame, ...]:
        """The starting stack (innermost first) of a thread whose outermost own frame is ``frame``."""
        for (filename, first, last), stack in self._origins.items():
            if frame[0] == filename and first <= frame[1] <= last:
                return stack
        return ()


#: No roots given: everything outside the standard library, site-packages and the harness is the user's.
DEFAULT_CODE = CodeMap()


def clean_stack(frames: Sequence[Frame], code: CodeMap = DEFAULT_CODE) -> tuple[tuple[Frame, ...], Frame] | None:
    """Harness-free frames (innermost **last**) and the location, or ``None`` to drop.

    ``frames`` come innermost first, as both tracers give them. Returns ``None``
    when the innermost frame outside the standard library is harness code, or
    nothing but harness and loop frames is left. The location is the innermost user frame, else the
    innermost library frame, else the innermost standard-library frame.
    """
    kind = code.kind
    if not frames or kind(frames[0][0]) == "harness":
        return None
    # The standard library called by the harness (os.path.isdir while listing fds) is the harness's.
    caller = next((kind(f[0]) for f in frames if kind(f[0]) not in ("stdlib", "caller")), None)
    if caller == "harness":
        return None
    kept = _own_frames(frames, code)
    if kept is None:
        return None
    if code._origins and not any(kind(f[0]) == "user" for f in kept):
        origin = code.origin_of(kept[0])
        outer = _own_frames(origin, code) if origin else None
        if outer:
            kept = outer + kept
    # A recursive call or a comprehension repeats a line: show it once.
    kept = [f for i, f in enumerate(kept) if i == 0 or f[:2] != kept[i - 1][:2]]
    location = None
    for wanted in ("user", "library", "stdlib"):
        location = next((f for f in reversed(kept) if kind(f[0]) == wanted), None)
        if location is not None:
            break
    assert location is not None  # _own_frames keeps at least one non-caller frame
    return tuple(kept), location


def _own_frames(frames: Sequence[Frame], code: CodeMap) -> list[Frame] | None:
    """``frames`` (innermost first) outermost first, without harness and leading loop frames."""
    kind = code.kind
    kept = [f for f in reversed(frames) if kind(f[0]) != "harness"]
    # Event-loop and thread-bootstrap frames that only *call* user code go; those the user's
    # code called (innermost, e.g. asyncio.create_task making a Task) stay.
    last_own = max((i for i, f in enumerate(kept) if kind(f[0]) != "caller"), default=-1)
    if last_own < 0:
        return None
    return [f for i, f in enumerate(kept) if i >= last_own or kind(f[0]) != "caller"]


def via_of(kept: Sequence[Frame], location: Frame, code: CodeMap = DEFAULT_CODE) -> Frame | None:
    """The library (else standard-library) frame that the user's ``location`` called, if any."""
    if code.kind(location[0]) != "user":
        return None
    try:
        inner = list(kept[list(kept).index(location) + 1 :])
    except ValueError:
        return None
    for wanted in ("library", "stdlib"):
        found = next((f for f in inner if code.kind(f[0]) == wanted), None)
        if found is not None:
            return found
    return None


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when inside it, an installed one from its package."""
    site = _SITE_DIR.search(filename)
    if site is not None:
        return filename[site.start(1) :].replace(os.sep, "/")
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith("..") else rel


def format_frame(frame: Frame, *, source: bool = True) -> str:
    """``"tests/test_x.py:12 in leak: keep.append(bytes(100))"`` (parts omitted when unknown)."""
    filename, lineno, function = frame
    if lineno <= 0 and not function:
        return filename  # a native function's name, not a file
    text = f"{display_path(filename)}:{lineno}"
    if function:
        text += f" in {function}"
    if source and lineno > 0:
        line = linecache.getline(filename, lineno).strip()
        if line:
            text += f": {line}"
    return text
