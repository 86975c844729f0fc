"""A child process run to completion each call."""

from __future__ import annotations

import subprocess

LEAKS = False
RESOURCE = None
DESCRIPTION = "subprocess.run(['true']) per call: child spawned and reaped"


def step() -> None:
    subprocess.run(["true"], check=True)
