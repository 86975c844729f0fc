"""What the valgrind child runs: a ``FILE.py:FUNCTION`` callable or a pytest node id.

* ``path/to/file.py:function`` — a zero-argument callable (sync or ``async def``),
  called warm-up + N times by :mod:`leakcheck.valgrind.driver`; needs no plugin.
* a pytest node id (``tests/test_x.py::test_y``) — run as
  ``python -m pytest NODEID -p no:cacheprovider --leak-mode=repeat
  --leak-iterations=N --leak-warmup=W``, which runs the ``@pytest.mark.leak`` test
  body repeatedly with fixtures set up once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..targets import split_callable
from .errors import TargetError

__all__ = ["Target", "parse_target", "preflight"]

#: Seconds the check that a target loads or collects may take (it runs without valgrind).
PREFLIGHT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Target:
    """What the child runs: ``kind`` is ``"callable"`` (``FILE.py:FUNCTION``) or ``"pytest"``."""

    kind: Literal["callable", "pytest"]
    spec: str

    def command(self, python: str, iterations: int, warmup: int) -> list[str]:
        """The child's command line for ``warmup`` + ``iterations`` calls."""
        if self.kind == "callable":
            return [
                python,
                "-m",
                "leakcheck.valgrind.driver",
                self.spec,
                str(iterations),
                str(warmup),
            ]
        return [
            python,
            "-m",
            "pytest",
            self.spec,
            "-p",
            "no:cacheprovider",
            "-q",
            "--leak-mode=repeat",
            f"--leak-iterations={iterations}",
            f"--leak-warmup={warmup}",
        ]

    def __str__(self) -> str:
        return self.spec


def parse_target(text: str) -> Target:
    """Classify ``text``: ``"x.py:func"`` is a callable, anything else a pytest node id.

    Raises :class:`TargetError` when a callable's file does not exist.
    """
    if not text:
        raise TargetError(text, "the target is empty")
    if "::" not in text:
        try:
            spec = split_callable(text)
        except ConfigError:
            return Target("pytest", text)  # no FILE:NAME shape: let pytest judge the node id
        path, name = spec.target, spec.attr
        if path.endswith(".py") and name.replace(".", "").replace("_", "").isalnum():
            if not Path(path).is_file():
                raise TargetError(text, f"no such file {path!r}")
            return Target("callable", f"{Path(path).resolve()}:{name}")
    return Target("pytest", text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "E ")) or "Error" in line]
    return (errors or lines or ["no output"])[-1]


def preflight(target: Target, python: str, *, cwd: str | None, env: Mapping[str, str]) -> None:
    """Check, without valgrind, that ``target`` loads (a callable) or collects (a node id).

    Valgrind takes tens of seconds to start CPython; a missing file, function or
    test must be answered before that.  Raises :class:`TargetError` with the
    child's own one-line reason.
    """
    if target.kind == "callable":
        command = [python, "-m", "leakcheck.valgrind.driver", "--check", target.spec]
    else:
        path = target.spec.split("::", 1)[0]
        where = Path(cwd or ".") / path
        if "::" in target.spec and not where.exists():
            raise TargetError(target.spec, f"no such file {path!r} (looked in {Path(cwd or '.').resolve()})")
        command = [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", target.spec]
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PREFLIGHT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TargetError(target.spec, f"loading it took over {PREFLIGHT_TIMEOUT:g}s without valgrind") from None
    if proc.returncode == 0:
        return
    if target.kind == "callable":
        raise TargetError(target.spec, _last_line(proc.stderr))
    if proc.returncode == 5:
        raise TargetError(target.spec, "pytest collects no test by that id")
    raise TargetError(target.spec, f"pytest cannot collect it: {_last_line(proc.stdout + proc.stderr)}")
