"""The unclosed-resources probe: what the garbage collector had to close for the step.

A file, socket, pipe or database connection dropped without ``close()``
grows nothing: CPython closes it when the last reference goes (or at the next
collection) and says so with a ``ResourceWarning``, or a finalizer fails and
reports through ``sys.unraisablehook``. Under load, collection runs late and
these become descriptor exhaustion, so each one is a finding.

:data:`RECORDER` counts them while a check measures, whatever the warning
filters say: :meth:`UnclosedRecorder.start` puts an ``always`` filter for
``ResourceWarning`` first (once, before the baseline: changing the filters
invalidates every module's ``__warningregistry__``) and routes the warnings
module's display function and the unraisable hook through itself; other
warnings reach the user's filters and display untouched, and
:meth:`UnclosedRecorder.stop` puts everything back. Counting must not read as
a leak: a kind of event (its message with names and numbers taken out) gets
one bounded entry the first time it is seen, later events only bump a count.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tracemalloc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from .base import HandleProbe

__all__ = ["MAX_KINDS", "RECORDER", "Kind", "UnclosedRecorder", "UnclosedResources"]

#: Kinds kept apart; any more are counted under one "other kinds" entry.
MAX_KINDS = 32
#: Characters of a message kept: reprs of big objects can be long.
MAX_MESSAGE = 300
#: Frames kept of where an unclosed object was allocated (tracemalloc on).
MAX_FRAMES = 8

# Names, paths, addresses and numbers differ from one object to the next; a kind is what is left.
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|0x[0-9a-fA-F]+|\d+")
_OWN_FILES = ("/leakcheck/", "\\leakcheck\\")


@dataclass
class Kind:
    """One kind of unclosed resource seen while counting: how often, and the first message."""

    source: str  #: ``"ResourceWarning"`` (or its subclass) or ``"unraisable"``
    message: str  #: the first event's message, as CPython wrote it
    count: int = 0
    traceback: tuple[str, ...] = field(default=())  #: where the object was allocated, innermost last


def _allocated_at(obj: object) -> tuple[str, ...]:
    """Where tracemalloc saw ``obj`` allocated, innermost frame last, leakcheck's own frames left out."""
    if obj is None or not tracemalloc.is_tracing():
        return ()
    tb = tracemalloc.get_object_traceback(obj)
    if tb is None:
        return ()
    frames = [f"{f.filename}:{f.lineno}" for f in tb if not any(p in f.filename for p in _OWN_FILES)]
    return tuple(frames[-MAX_FRAMES:])  # tracemalloc lists the oldest frame first


class UnclosedRecorder:
    """Counts ``ResourceWarning`` and unraisable-hook reports between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.total = 0  #: events counted since :meth:`start` (allowed ones left out)
        self.kinds: dict[str, Kind] = {}
        self.counting = False  #: after :meth:`hold`, events add tracebacks only, not counts
        self._allowed: re.Pattern[str] | None = None
        self._saved: tuple[Any, Callable[..., Any], Callable[..., Any]] | None = None

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._saved is not None

    def start(self, allow: Sequence[str] = ()) -> None:
        """Count from now on; ``allow`` are fnmatch patterns of messages never counted."""
        if self._saved is not None:
            return
        self.total = 0
        self.kinds = {}
        self.counting = True
        self._allowed = re.compile("|".join(fnmatch.translate(p) for p in allow)) if allow else None
        # catch_warnings saves and restores the filters list (and tells the C
        # module it changed); the display function and the hook are ours to restore.
        guard = warnings.catch_warnings()
        guard.__enter__()
        warnings.filterwarnings("always", category=ResourceWarning)
        self._saved = (guard, warnings._showwarnmsg, sys.unraisablehook)  # type: ignore[attr-defined]
        previous = self._saved[1]

        def show(msg: Any) -> None:
            if isinstance(msg.category, type) and issubclass(msg.category, ResourceWarning):
                self._record(msg.category.__name__, str(msg.message), msg.source)
            else:
                previous(msg)

        warnings._showwarnmsg = show  # type: ignore[attr-defined]
        sys.unraisablehook = self._unraisable

    def zero(self) -> None:
        """Count from zero again (at the baseline): kinds seen so far stay, with no count."""
        self.total = 0
        for kind in self.kinds.values():
            kind.count = 0

    def hold(self) -> None:
        """Stop counting but keep listening, to add allocation tracebacks (the attribution window)."""
        self.counting = False

    def stop(self) -> None:
        """Put the user's filters, display function and unraisable hook back."""
        if self._saved is None:
            return
        guard, show, hook = self._saved
        self._saved = None
        warnings._showwarnmsg = show  # type: ignore[attr-defined]
        sys.unraisablehook = hook
        guard.__exit__(None, None, None)

    def summary(self) -> list[Kind]:
        """The kinds counted since :meth:`zero`, most frequent first."""
        return sorted((k for k in self.kinds.values() if k.count), key=lambda k: -k.count)

    def _unraisable(self, args: Any) -> None:
        try:
            what = repr(args.object) if args.object is not None else ""
        except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the report
            what = f"<{type(args.object).__name__} object>"
        err = args.err_msg or "Exception ignored in"
        exc = "" if args.exc_type is None else f": {args.exc_type.__name__}: {args.exc_value}"
        self._record("unraisable", f"{err}: {what}{exc}" if what else f"{err}{exc}", args.object)

    def _record(self, source: str, message: str, obj: object) -> None:
        if self._allowed is not None and self._allowed.match(message):
            return
        key = f"{source}:{_VARYING.sub('_', message[:MAX_MESSAGE])}"
        kind = self.kinds.get(key)
        if kind is None:
            if len(self.kinds) >= MAX_KINDS:
                key = "other"
                kind = self.kinds.get(key)
            if kind is None:
                text = message if key != "other" else "other kinds of unclosed resources"
                kind = self.kinds[key] = Kind(source, text[:MAX_MESSAGE])
        if self.counting:
            kind.count += 1
            self.total += 1
        if not kind.traceback:
            kind.traceback = _allocated_at(obj)


#: The one recorder: warning display and the unraisable hook are process-wide.
RECORDER = UnclosedRecorder()


class UnclosedResources(HandleProbe):
    """Resources the garbage collector had to close: ``ResourceWarning`` and unraisable reports, counted."""

    name = "unclosed"
    title = "Unclosed resources (closed by the GC)"
    unit = "events"
    # A resource dropped on every call, or nearly: one event every other call is
    # already over; one-offs and rare ones (a retry path) are not.
    default_limit = 0.5

    def counter(self) -> Callable[[], float]:
        return lambda: float(RECORDER.total)
