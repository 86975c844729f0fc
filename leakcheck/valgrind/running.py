"""Run a target under memcheck twice, with N and 2N iterations, in child processes.

Both runs get the same warm-up, run in parallel by default, and write valgrind's XML
to a temporary directory, which is removed on every path unless kept when asked.
:func:`run_valgrind` turns the two runs into a :class:`ValgrindReport`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import ConfigError
from .analysis import compare_runs
from .errors import ValgrindNotFoundError
from .memcheck_xml import LEAK_KINDS, MemcheckRun, parse_memcheck_xml
from .results import DEFAULT_MIN_BYTES, DEFAULT_TOP, Status, ValgrindReport
from .targets import Target, parse_target, preflight

__all__ = [
    "CHILD_ENV_FLAG",
    "DEFAULT_ITERATIONS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WARMUP",
    "default_suppressions",
    "find_valgrind",
    "run_valgrind",
]

#: Iterations of the shorter run (the longer one runs twice as many).
DEFAULT_ITERATIONS = 10
#: Untracked calls before the iterations, in both runs (caches, lazy imports).
DEFAULT_WARMUP = 2
#: Seconds each child may run under valgrind before it is killed (status ``timeout``).
DEFAULT_TIMEOUT = 600.0

#: Environment variable set in the child, so a plugin can refuse to recurse.
CHILD_ENV_FLAG = "LEAKCHECK_VALGRIND_CHILD"


def default_suppressions() -> Path:
    """The CPython suppression file shipped in ``leakcheck/data``."""
    return Path(__file__).resolve().parent.parent / "data" / "valgrind-python.supp"


def find_valgrind(valgrind: str = "valgrind") -> str:
    """Resolve ``valgrind`` (a name on PATH or a path) or raise :class:`ValgrindNotFoundError`."""
    found = shutil.which(valgrind)
    if found is None:
        raise ValgrindNotFoundError(valgrind)
    return found


@dataclass(frozen=True)
class _Child:
    iterations: int
    returncode: int | None
    timed_out: bool
    xml_path: Path
    log_path: Path
    run: MemcheckRun | None


def _child_env(base: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONMALLOC"] = "malloc"
    env.setdefault("PYTHONHASHSEED", "0")  # same hashes in both runs: same code paths
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env[CHILD_ENV_FLAG] = "1"
    # The directory that holds the leakcheck package, so the child imports this copy.
    package_root = str(Path(__file__).resolve().parents[2])
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + old if old else "")
    return env


def _valgrind_command(valgrind: str, xml_path: Path, suppressions: Sequence[Path], extra: Sequence[str]) -> list[str]:
    return [
        valgrind,
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect",
        "--num-callers=40",
        "--keep-debuginfo=yes",
        "--gen-suppressions=all",
        "--child-silent-after-fork=yes",
        "--trace-children=no",
        # No gdbserver: its FIFOs (vgdb-pipe-*) go in $TMPDIR and stay there when a child is killed.
        "--vgdb=no",
        "--xml=yes",
        f"--xml-file={xml_path}",
        *(f"--suppressions={path}" for path in suppressions),
        *extra,
    ]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run_children(
    commands: Sequence[tuple[int, list[str]]],
    work: Path,
    valgrind_args: dict[int, list[str]],
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float,
    parallel: bool,
) -> list[_Child]:
    results: dict[int, _Child] = {}
    pending = list(commands)
    while pending:
        batch = pending if parallel else pending[:1]
        pending = [] if parallel else pending[1:]
        procs: list[tuple[int, subprocess.Popen[bytes], IO[bytes], Path]] = []
        try:
            for iterations, command in batch:
                log_path = work / f"memcheck-{iterations}.log"
                log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed once the child has exited
                try:
                    proc = subprocess.Popen(
                        [*valgrind_args[iterations], *command],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=dict(env),
                        cwd=cwd,
                        start_new_session=True,
                    )
                except BaseException:
                    log.close()
                    raise
                procs.append((iterations, proc, log, log_path))
            deadline = time.monotonic() + timeout
            for iterations, proc, log, log_path in procs:
                timed_out = False
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(proc)
                finally:
                    log.close()
                xml_path = work / f"memcheck-{iterations}.xml"
                run = parse_memcheck_xml(xml_path) if xml_path.exists() else None
                results[iterations] = _Child(iterations, proc.returncode, timed_out, xml_path, log_path, run)
        except BaseException:
            # Ctrl-C, SIGTERM turned into an exception, a failed start: the children are in
            # sessions of their own, so nothing else stops them; stop them before the temp
            # folder they write to is removed.
            for _, child, child_log, _ in procs:
                _kill_group(child)  # the whole group: pytest's own children too
                child_log.close()
            raise
    return [results[iterations] for iterations, _ in commands]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


def _failure(child: _Child, timeout: float) -> tuple[Status, str] | None:
    n = child.iterations
    if child.timed_out:
        return "timeout", (
            f"the run with {n} iterations was killed after {timeout:g}s; if it only needs longer, "
            "raise the limit (--timeout) or lower the iterations"
        )
    run = child.run
    code = child.returncode
    if code is not None and code < 0:
        return "crashed", f"the run with {n} iterations died by signal {-code}"
    if run is not None and run.fatal_signal:
        return "crashed", f"the run with {n} iterations died by {run.fatal_signal}"
    if code:
        detail = _tail(child.log_path)
        return "failed", (
            f"the run with {n} iterations exited with status {code} (the target failed "
            f"or could not be loaded); last lines of its output:\n{detail}"
        )
    if run is None or not run.complete:
        return "crashed", (
            f"the run with {n} iterations left {'no' if run is None else 'truncated'} "
            "valgrind XML: valgrind or the child was killed"
        )
    return None


def run_valgrind(
    target: str | Target,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    suppressions: Sequence[str | Path] = (),
    focus: Sequence[str] = (),
    valgrind: str = "valgrind",
    python: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    keep: bool = False,
    parallel: bool = True,
    min_bytes_per_iteration: float = DEFAULT_MIN_BYTES,
    include_possible: bool = False,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    valgrind_args: Sequence[str] = (),
    top: int = DEFAULT_TOP,
    check_target: bool = True,
) -> ValgrindReport:
    """Run ``target`` under memcheck with N and 2N iterations; report what grows.

    ``target`` is ``"path/to/file.py:function"`` or a pytest node id (see
    :func:`parse_target`).  ``suppressions`` are added to the shipped CPython file;
    ``focus`` patterns (fnmatch, against each frame's object path or name, function
    and source file) select the loss records that count — by default those whose stack
    has a frame outside the interpreter and the C library.  ``include_possible`` makes
    possibly-lost bytes count towards the limit.  Temporary files are removed on every
    path unless ``keep`` (a failed run's message then quotes the end of its log).
    ``check_target`` first loads or collects the target without valgrind, so a typo
    fails in a second (the plugin, which has collected the test already, skips it).

    Raises :class:`ValgrindNotFoundError` when valgrind is missing and
    :class:`ValgrindError` for bad arguments or a target that does not load; a crash or timeout of the child is a
    report status, not an exception.
    """
    if iterations < 1:
        raise ConfigError("iterations", iterations, "must be >= 1", "run_valgrind()")
    if warmup < 0:
        raise ConfigError("warmup", warmup, "must be >= 0", "run_valgrind()")
    valgrind_path = find_valgrind(valgrind)
    workdir = str(cwd) if cwd is not None else None
    spec = target if isinstance(target, Target) else parse_target(target, cwd=workdir)
    supp_files = [default_suppressions()]
    for supp in suppressions:
        if not Path(supp).is_file():
            raise ConfigError(
                "suppressions",
                str(supp),
                "no such file; pass an existing valgrind .supp file",
                "--suppressions",
            )
        supp_files.append(Path(supp).resolve())
    python_exe = python or sys.executable
    child_env = _child_env(env)
    if check_target:
        preflight(spec, python_exe, cwd=workdir, env=child_env, label=str(target))
    work = Path(tempfile.mkdtemp(prefix="leakcheck-valgrind-"))
    try:
        return _run_and_judge(
            spec,
            str(target),
            work,
            valgrind_path,
            supp_files,
            python_exe,
            child_env,
            workdir,
            iterations=iterations,
            warmup=warmup,
            focus=focus,
            timeout=timeout,
            keep=keep,
            parallel=parallel,
            min_bytes_per_iteration=min_bytes_per_iteration,
            include_possible=include_possible,
            valgrind_args=valgrind_args,
            top=top,
        )
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _run_and_judge(
    spec: Target,
    label: str,
    work: Path,
    valgrind_path: str,
    supp_files: Sequence[Path],
    python_exe: str,
    child_env: Mapping[str, str],
    workdir: str | None,
    *,
    iterations: int,
    warmup: int,
    focus: Sequence[str],
    timeout: float,
    keep: bool,
    parallel: bool,
    min_bytes_per_iteration: float,
    include_possible: bool,
    valgrind_args: Sequence[str],
    top: int,
) -> ValgrindReport:
    started = time.monotonic()
    counts = (iterations, 2 * iterations)
    commands = [(n, spec.command(python_exe, n, warmup)) for n in counts]
    vg_args = {
        n: _valgrind_command(valgrind_path, work / f"memcheck-{n}.xml", supp_files, list(valgrind_args)) for n in counts
    }
    children = _run_children(commands, work, vg_args, child_env, workdir, timeout, parallel)
    elapsed = time.monotonic() - started
    common = {
        "target": label,
        "iterations": iterations,
        "warmup": warmup,
        "elapsed_seconds": elapsed,
        "min_bytes_per_iteration": min_bytes_per_iteration,
        "top": top,
    }
    order = {"timeout": 0, "crashed": 1, "failed": 2}
    failures = [f for f in (_failure(c, timeout) for c in children) if f is not None]
    if failures:
        failures.sort(key=lambda f: order[f[0]])
        status, message = failures[0]
        bad = next(c for c in children if _failure(c, timeout) == failures[0])
        if not keep and status != "failed":
            # The log goes with the temp folder: quote its end (a failed run's message already does).
            tail = _tail(bad.log_path)
            message += f"; last lines of its output (pass --keep to keep the whole log):\n{tail}" if tail else ""
        return ValgrindReport(
            status=status,
            message=message,
            log_path=str(bad.log_path) if keep else None,
            **common,  # type: ignore[arg-type]
        )
    run_n, run_2n = (c.run for c in children)
    assert run_n is not None and run_2n is not None
    records, dropped = compare_runs(run_n, run_2n, iterations, focus=focus)
    per_kind = {kind: sum(r.per_iteration_bytes for r in records if r.kind == kind) for kind in LEAK_KINDS}
    judged = per_kind["Leak_DefinitelyLost"] + per_kind["Leak_IndirectlyLost"]
    if include_possible:
        judged += per_kind["Leak_PossiblyLost"]
    status = "leaking" if judged >= min_bytes_per_iteration else "clean"
    log_path = str(work) if keep else None
    return ValgrindReport(
        status=status,
        per_iteration_definite=per_kind["Leak_DefinitelyLost"],
        per_iteration_indirect=per_kind["Leak_IndirectlyLost"],
        per_iteration_possible=per_kind["Leak_PossiblyLost"],
        records=records,
        dropped_records=dropped,
        memcheck_errors=len(run_2n.issues),
        log_path=log_path,
        **common,  # type: ignore[arg-type]
    )
