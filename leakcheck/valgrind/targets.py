"""What the valgrind child runs: a ``FILE.py:FUNCTION`` callable or a pytest node id.

* ``path/to/file.py:function`` or ``module:function`` — a zero-argument callable
  (sync or ``async def``), called warm-up + N times by :mod:`leakcheck.valgrind.driver`;
  needs no plugin.
* a pytest node id (``tests/test_x.py::test_y``) — run as
  ``python -m pytest NODEID -p no:cacheprovider --leak-mode=repeat
  --leak-iterations=N --leak-warmup=W``, which runs the ``@pytest.mark.leak`` test
  body repeatedly with fixtures set up once.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..hints import close_matches, some_of
from ..targets import split_callable
from .errors import SHAPE_HINT, TargetError

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


def parse_target(text: str, *, cwd: str | Path | None = None) -> Target:
    """Classify ``text``: ``"x.py:func"`` or ``"module:func"`` is a callable, anything else a pytest node id.

    A relative file is looked for in ``cwd`` (default: the working folder).  Raises
    :class:`TargetError` when a callable's file does not exist.
    """
    if not text:
        raise TargetError(text, "the target is empty")
    if "::" not in text:
        try:
            spec = split_callable(text)
        except ConfigError:
            return Target("pytest", text)  # no FILE:NAME shape: let pytest judge the node id
        path, name = spec.target, spec.attr
        if not all(part.isidentifier() for part in name.split(".")):
            return Target("pytest", text)
        if path.endswith(".py"):
            file = Path(cwd or ".") / path
            if not file.is_file():
                raise TargetError(text, f"no such file {path!r} (looked in {Path(cwd or '.').resolve()})")
            return Target("callable", f"{file.resolve()}:{name}")
        if all(part.isidentifier() for part in path.split(".")):
            return Target("callable", text)  # module:function, imported from the working folder
    return Target("pytest", text)


def _last_line(text: str) -> str:
    """The last error line of a child's output, with the indented lines that detail it, as one line."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith(("ERROR", "E ")) or "Error" in line]
    if not starts:
        return lines[-1].strip() if lines else "no output"
    first = starts[-1]
    details = []
    for line in lines[first + 1 :]:
        if not line.startswith((" ", "\t")):
            break
        details.append(line.strip())
    return "; ".join([lines[first].strip().rstrip(":"), *details])


def _test_ids(path: Path) -> list[str]:
    """The test functions of ``path`` as node-id tails (``test_x``, ``TestK::test_y``), read without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    ids = []
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            ids.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            ids.extend(
                f"{node.name}::{m.name}" for m in node.body if isinstance(m, functions) and m.name.startswith("test")
            )
    return ids


def _no_such_test(spec: str, cwd: str | None) -> str | None:
    """``FILE::NAME`` names no test of FILE: why, with the closest test ids; ``None`` when unsure."""
    path, _, name = spec.partition("::")
    ids = _test_ids(Path(cwd or ".") / path)
    if not name or not ids or name.split("[", 1)[0] in ids:
        return None  # a parameter id or something pytest must judge
    close = close_matches(name, ids, n=3)
    listed = some_of([f"`{path}::{i}`" for i in close or ids])
    return f"{path} has no test {name!r}; " + (f"did you mean {listed}?" if close else f"its tests are {listed}")


def preflight(target: Target, python: str, *, cwd: str | None, env: Mapping[str, str], label: str = "") -> None:
    """Check, without valgrind, that ``target`` loads (a callable) or collects as a leak test (a node id).

    Valgrind takes tens of seconds to start CPython; a missing file, function or
    test, or a test without ``@pytest.mark.leak`` (which the child would run once,
    not repeat), must be answered before that.  Raises :class:`TargetError` naming
    ``label`` (what the user typed; default the target) with the child's own
    one-line reason.
    """
    label = label or target.spec
    if target.kind == "callable":
        command = [python, "-m", "leakcheck.valgrind.driver", "--check", target.spec]
    else:
        path = target.spec.split("::", 1)[0]
        where = Path(cwd or ".") / path
        if "::" in target.spec and not where.exists():
            raise TargetError(label, f"no such file {path!r} (looked in {Path(cwd or '.').resolve()})")
        command = [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "leak", target.spec]
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
        raise TargetError(label, f"loading it took over {PREFLIGHT_TIMEOUT:g}s without valgrind", hint="") from None
    if proc.returncode == 0:
        return
    if target.kind == "callable":
        # The driver's line names its own fix (a close name, the module to install, where it raised).
        raise TargetError(label, _last_line(proc.stderr), hint="")
    output = proc.stdout + proc.stderr
    if proc.returncode == 5 and "deselected" in output:
        raise TargetError(
            label,
            "it is not a leak test: only tests marked @pytest.mark.leak are repeated under valgrind; "
            "add the marker, or pass a test that has it",
            hint="",
        )
    if proc.returncode == 5:
        raise TargetError(label, "pytest collects no test by that id")
    if "ERROR: not found" in output:
        missing = _no_such_test(target.spec, cwd)
        if missing is not None:
            raise TargetError(label, missing, hint="")
    # Only a target pytest cannot even find is of the wrong shape; otherwise pytest's line says what is wrong.
    hint = SHAPE_HINT if "file or directory not found" in output else ""
    raise TargetError(label, f"pytest cannot collect it: {_last_line(output)}", hint=hint)
