"""A helper process spawned per call and never waited for or killed."""

from __future__ import annotations

import subprocess

LEAKS = True
RESOURCE = "children"
DESCRIPTION = "a helper child process (sleep 30) spawned per call, never waited for or killed"

_procs: list[subprocess.Popen[bytes]] = []


def step() -> None:
    _procs.append(subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
