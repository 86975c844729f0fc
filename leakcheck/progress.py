"""A progress line while one leak test runs.

The runner calls :meth:`ProgressLine.update` once per sample; almost every
call returns after one clock reading, so the cost is a function call per
sample. On a terminal the line is drawn in place after what pytest wrote
(from the start under ``-v``, after a few seconds otherwise) at most a few
times a second, and erased when the test ends; when it does not fit, the note
goes first, then the middle of the test's name, so ``name: iteration N/M``
stays readable. Elsewhere (CI logs) a long test gets one full line every ten
seconds and nothing is erased.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["ProgressLine", "fit"]

#: A test shows progress on a terminal once it has run this long (at once under -v).
LIVE_AFTER = 3.0
#: Fewest seconds between two redraws of the live line.
LIVE_EVERY = 0.25
#: Seconds between two progress lines in a log that is not a terminal.
LOG_EVERY = 10.0
#: Fewest characters of a test's name worth showing; with less room only the count is drawn.
MIN_NAME = 8


def fit(name: str, done: int, target: int, note: str, room: int) -> str:
    """``name: iteration done/target, note`` in at most ``room`` characters (``""`` if nothing fits).

    The note's trailing parts go first, then the whole note, then the middle of
    the name (its start and its parameters stay); below :data:`MIN_NAME`
    characters of name only the count is left.
    """
    count = f"iteration {done}/{target}"
    head = f"{name}: {count}"
    parts = note.split(", ") if note else []
    for n in range(len(parts), 0, -1):
        line = f"{head}, {', '.join(parts[:n])}"
        if len(line) <= room:
            return line
    if len(head) <= room:
        return head
    keep = room - len(f"...: {count}")
    if keep >= MIN_NAME:
        return f"{name[: keep - keep // 2]}...{name[len(name) - keep // 2 :]}: {count}"
    for short in (count, f"{done}/{target}"):
        if len(short) <= room:
            return short
    return ""


class ProgressLine:
    """Draws ``test_x: iteration 1200/4000, py_blocks +2.0/it, extending`` for the running test.

    ``write`` receives raw text: on a terminal the line with the backspaces that
    redraw it (``width`` is the room left on the cursor's row); otherwise whole
    lines, ``[leakcheck] ...`` and a newline each, after which :meth:`finish`
    calls ``resume`` (if given) so that whoever wrote before them can re-start
    its own line.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        tty: bool,
        verbose: bool = False,
        width: Callable[[], int] = lambda: 80,
        clock: Callable[[], float] = time.monotonic,
        resume: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._tty = tty
        self._verbose = verbose
        self._width = width
        self._clock = clock
        self._resume = resume
        self._name = ""
        self._next = 0.0
        self._shown = 0  #: characters of the live line on screen now
        self._logged = False  #: a log line was written for this test

    def start(self, name: str) -> None:
        """A new test begins: nothing is drawn until its first update is due."""
        self._name = name
        if self._tty:
            delay = 0.0 if self._verbose else LIVE_AFTER
        else:
            delay = LOG_EVERY
        self._next = self._clock() + delay

    def update(self, done: int, target: int, note: str = "") -> None:
        """Record that ``done`` of ``target`` iterations have run; redraw when due."""
        now = self._clock()
        if now < self._next:
            return
        self._next = now + (LIVE_EVERY if self._tty else LOG_EVERY)
        if not self._tty:
            note = f", {note}" if note else ""
            self._write(f"[leakcheck] {self._name}: iteration {done}/{target}{note}\n")
            self._logged = True
            return
        # One column for the space before the line, one spare: a character in the last column
        # leaves some terminals about to wrap, and a backspace cannot follow it back.
        text = fit(self._name, done, target, note, self._width() - 2)
        line = " " + text if text else ""
        pad = max(self._shown - len(line), 0)
        if line or pad:
            self._write("\b" * self._shown + line + " " * pad + "\b" * pad)
        self._shown = len(line)

    def finish(self) -> None:
        """The test ended: erase the live line, leaving pytest's own output as it was; after log lines, resume."""
        if self._logged and self._resume is not None:
            self._resume()
        self._logged = False
        if self._shown:
            n = self._shown
            self._write("\b" * n + " " * n + "\b" * n)
            self._shown = 0
        self._name = ""
