"""The verdict outlives the attribution window: it is kept outside the process first.

memray's tracker can crash the process (a SIGSEGV in memray 1.20); the verdict
reached before the window would die with it. So before a window opens the
plugin writes the verdict and its failure text to a file (:meth:`VerdictGuard.record`)
and removes it once the window is done (:meth:`VerdictGuard.clear`). If the
process dies in between:

* under pytest-xdist, the controller learns of the crashed worker and reads
  the file back (:meth:`VerdictGuard.recover`): the test is reported with its
  verdict and :data:`CRASH_NOTE`, and the merged report holds it;
* in a single process, a tiny guardian process started with the record
  (``python -I -S``, ~20 ms, only for tests that open a window) sees its pipe
  close without the all-clear and prints the verdict and the note on stderr.

This module needs no pytest: the plugin wires it in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Callable

from .results import Attribution, CheckResult

__all__ = ["CRASH_NOTE", "VerdictGuard"]

#: What a test whose attribution window crashed the process is told.
CRASH_NOTE = "attribution crashed (memray); rerun with --leak-attribution=tracemalloc"

# The guardian: wait for the all-clear on stdin; without it the parent died, so say what it knew.
_GUARDIAN = f"""
import json, os, sys
if sys.stdin.buffer.read() != b"ok":
    path = sys.argv[1]
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        sys.stderr.write("\\nleakcheck: %s crashed the process in its attribution window; {CRASH_NOTE}\\n"
                         "its verdict, reached before the window:\\n%s\\n" % (record["id"], record["text"]))
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
    except (OSError, ValueError, KeyError):
        pass
"""


class VerdictGuard:
    """Verdict files of the tests whose attribution window is open, in one folder per session."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        guardian: bool = True,
        uncaptured: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._folder = folder
        self.guardian = guardian  #: start a guardian process (single process: no one else would tell)
        #: suspends output capture, so the guardian inherits the real stderr (pytest's capture manager)
        self._uncaptured = uncaptured
        self._watch: subprocess.Popen[bytes] | None = None

    @property
    def folder(self) -> Path:
        """The folder of the verdict files (created on first use)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="leakcheck-verdicts-"))
        return self._folder

    def path_for(self, test_id: str) -> Path:
        """The verdict file of ``test_id``."""
        return self.folder / (hashlib.sha1(test_id.encode()).hexdigest()[:16] + ".json")

    def record(self, test_id: str, result: CheckResult) -> None:
        """Keep ``result`` (and its failure text) outside the process until :meth:`clear`."""
        path = self.path_for(test_id)
        tmp = path.with_suffix(".tmp")
        data = {"id": test_id, "result": result.to_dict(), "text": str(result)}
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
        if self.guardian and self._watch is None:
            with self._uncaptured():
                self._watch = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _GUARDIAN, str(path)],
                    stdin=subprocess.PIPE,
                )

    def clear(self, test_id: str) -> None:
        """The window is over: drop the verdict file and send the guardian away."""
        watch, self._watch = self._watch, None
        if watch is not None:
            stdin: IO[bytes] | None = watch.stdin
            try:
                if stdin is not None:
                    stdin.write(b"ok")
                    stdin.close()
            except OSError:
                pass
            watch.wait()
        if self._folder is not None:
            try:
                self.path_for(test_id).unlink()
            except FileNotFoundError:
                pass

    def recover(self, test_id: str) -> CheckResult | None:
        """The verdict of ``test_id`` if its process died in the window (the file is removed), else ``None``."""
        if self._folder is None:
            return None
        path = self.path_for(test_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            path.unlink()
        except (OSError, ValueError):
            return None
        result = CheckResult.from_dict(data["result"])
        notes = (CRASH_NOTE,)
        return dataclasses.replace(result, attribution=Attribution(notes=notes))

    def close(self) -> None:
        """End of session: remove the folder."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
