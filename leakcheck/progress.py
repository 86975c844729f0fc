"""A progress line while one leak test runs.

The runner calls :meth:`ProgressLine.update` once per sample; almost every
call returns after one clock reading, so the cost is a function call per
sample. On a terminal the line is drawn in place after what pytest wrote
(from the start under ``-v``, after a few seconds otherwise) at most a few
times a second, and erased when the test ends. Elsewhere (CI logs) a long
test gets one full line every ten seconds and nothing is erased.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["ProgressLine"]

#: A test shows progress on a terminal once it has run this long (at once under -v).
LIVE_AFTER = 3.0
#: Fewest seconds between two redraws of the live line.
LIVE_EVERY = 0.25
#: Seconds between two progress lines in a log that is not a terminal.
LOG_EVERY = 10.0


class ProgressLine:
    """Draws ``test_x: iteration 1200/4000, py_blocks +2.0/it, extending`` for the running test."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        tty: bool,
        verbose: bool = False,
        width: Callable[[], int] = lambda: 80,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._tty = tty
        self._verbose = verbose
        self._width = width
        self._clock = clock
        self._name = ""
        self._next = 0.0
        self._shown = 0  #: characters of the live line on screen now

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
        text = f"{self._name}: iteration {done}/{target}" + (f", {note}" if note else "")
        if not self._tty:
            self._write(f"\n[leakcheck] {text}\n")
            return
        room = max(self._width() - 2, 10)
        if len(text) > room:
            text = "..." + text[-(room - 3) :]
        line = " " + text
        pad = max(self._shown - len(line), 0)
        self._write("\b" * self._shown + line + " " * pad + "\b" * pad)
        self._shown = len(line)

    def finish(self) -> None:
        """The test ended: erase the live line, leaving pytest's own output as it was."""
        if self._shown:
            n = self._shown
            self._write("\b" * n + " " * n + "\b" * n)
            self._shown = 0
        self._name = ""
