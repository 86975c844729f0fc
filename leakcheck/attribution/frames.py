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

__all__ = ["Frame", "clean_stack", "display_path", "format_frame"]

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


def clean_stack(frames: Sequence[Frame]) -> tuple[tuple[Frame, ...], Frame] | None:
    """Harness-free frames (innermost **last**) and the location, or ``None`` to drop.

    ``frames`` come innermost first, as both tracers give them. Returns ``None``
    when the innermost frame is harness code or no user frame is left.
    """
    if not frames or _kind(frames[0][0]) == "harness":
        return None
    kept = [f for f in reversed(frames) if _kind(f[0]) != "harness"]
    # Event-loop and thread-bootstrap frames that only *call* user code go; those the user's
    # code called (innermost, e.g. asyncio.create_task making a Task) stay.
    last_own = max((i for i, f in enumerate(kept) if _kind(f[0]) != "caller"), default=-1)
    if last_own < 0:
        return None
    kept = [f for i, f in enumerate(kept) if i >= last_own or _kind(f[0]) != "caller"]
    location = next((f for f in reversed(kept) if _kind(f[0]) == "user"), None)
    if location is None:
        location = next(f for f in reversed(kept) if _kind(f[0]) == "stdlib")
    return tuple(kept), location


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when inside it, else as given."""
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
