"""Native leaks: run a leak test under valgrind memcheck and keep what grows per iteration.

The test is run twice in child processes under memcheck (in parallel by default), once
with N and once with 2N iterations after the same warm-up.  Loss records are matched
across the two runs by their native stack; only those that grow with the iteration
count are reported, as ``(lost(2N) - lost(N)) / N`` bytes per iteration.  One-off
losses — at import, at interpreter start-up or shutdown — are the same in both runs and
drop out.  Records whose stacks never leave the interpreter and the C library are
dropped too (unless ``focus`` patterns say otherwise): the heuristic Shopify's
ruby_memcheck uses for Ruby, where a leak is only the extension's if its stack passes
through the extension.

Two target forms:

* ``path/to/file.py:function`` — a zero-argument callable (sync or ``async def``),
  called warm-up + N times by :mod:`leakcheck.valgrind_driver`; needs no plugin.
* a pytest node id (``tests/test_x.py::test_y``) — run as
  ``python -m pytest NODEID -p no:cacheprovider --leak-mode=repeat
  --leak-iterations=N --leak-warmup=W``, which runs the ``@pytest.mark.leak`` test
  body repeatedly with fixtures set up once.

Entry points: :func:`run_valgrind` (library and pytest plugin),
:func:`add_valgrind_arguments` / :func:`run_valgrind_command` (the ``leakcheck
valgrind`` subcommand) and ``python -m leakcheck.valgrind`` (``scripts/valgrind.sh``).
Exit statuses of the command: 0 clean, 1 leaking, 2 usage error or valgrind missing,
3 the child crashed, timed out or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from .errors import ConfigError, LeakcheckError, ToolMissingError
from .units import format_size
from .valgrind_xml import (
    LEAK_KINDS,
    Frame,
    LossRecord,
    MemcheckRun,
    parse_memcheck_xml,
)

__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WARMUP",
    "INSTALL_HINT",
    "Frame",
    "GrowingRecord",
    "LossRecord",
    "Target",
    "TargetError",
    "ValgrindError",
    "ValgrindNotFoundError",
    "ValgrindReport",
    "add_valgrind_arguments",
    "compare_runs",
    "default_suppressions",
    "find_valgrind",
    "main",
    "parse_target",
    "run_valgrind",
    "run_valgrind_command",
]

#: Iterations of the shorter run (the longer one runs twice as many).
DEFAULT_ITERATIONS = 10
#: Untracked calls before the iterations, in both runs (caches, lazy imports).
DEFAULT_WARMUP = 2
#: Seconds each child may run under valgrind before it is killed (status ``timeout``).
DEFAULT_TIMEOUT = 600.0
#: Loss records shown in the short verdict.
DEFAULT_TOP = 5
#: Bytes per iteration (definitely + indirectly lost) from which a run is ``leaking``.
DEFAULT_MIN_BYTES = 1.0

INSTALL_HINT = (
    "install valgrind with your package manager: `sudo apt-get install valgrind` "
    "(Debian/Ubuntu), `sudo dnf install valgrind` (Fedora), `sudo pacman -S valgrind` "
    "(Arch), `apk add valgrind` (Alpine); on macOS `brew install valgrind` works only on "
    "old Intel releases, so run it in a Linux container instead; or pass `--valgrind "
    "PATH` to name the binary"
)

#: Environment variable set in the child, so a plugin can refuse to recurse.
CHILD_ENV_FLAG = "LEAKCHECK_VALGRIND_CHILD"

Status = Literal["clean", "leaking", "crashed", "timeout", "failed"]

# Objects whose frames are "the interpreter and the C library": a stack made only of
# these is not the user's code (unless --focus says otherwise).
_CORE_OBJECTS = (
    "libpython*",
    "python",
    "python3*",
    "libc.so*",
    "libc-*",
    "ld-linux*",
    "ld-*.so*",
    "ld.so*",
    "libm.so*",
    "libpthread*",
    "libdl*",
    "vgpreload_*",
)
# Functions that mark a record as interpreter start-up or shutdown.
_LIFECYCLE_FUNCTIONS = frozenset(
    {
        "Py_InitializeFromConfig",
        "Py_InitializeEx",
        "Py_Initialize",
        "pymain_init",
        "Py_FinalizeEx",
        "Py_Finalize",
        "_dl_init",
        "_dl_allocate_tls",
    }
)
_KIND_WORDS = {
    "Leak_DefinitelyLost": "definitely lost",
    "Leak_IndirectlyLost": "indirectly lost",
    "Leak_PossiblyLost": "possibly lost",
}
_ALLOCATORS = frozenset(
    {"malloc", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc", "valloc"}
)


class ValgrindError(LeakcheckError):
    """Base of the errors that stop a valgrind run before it starts."""


class ValgrindNotFoundError(ToolMissingError, ValgrindError):
    """The valgrind executable is missing; ``valgrind`` holds the name that was looked up.

    A :class:`~leakcheck.ToolMissingError` (``tool == "valgrind"``, ``hint`` says how to
    install it), so the pytest plugin can turn it into a skip with that reason.
    """

    def __init__(self, valgrind: str) -> None:
        self.valgrind = valgrind
        super().__init__("valgrind", f"looked for {valgrind!r} on PATH; {INSTALL_HINT}")


class TargetError(ConfigError, ValgrindError):
    """The target cannot be run: not ``FILE.py:FUNCTION`` or a node id, or a missing file."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(
            "target",
            target,
            f"{problem}; give either a zero-argument callable as "
            "`path/to/file.py:function` or a pytest node id such as "
            "`tests/test_x.py::test_y`",
            "leakcheck valgrind",
        )


# --------------------------------------------------------------------------- targets


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
                "leakcheck.valgrind_driver",
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
        path, sep, name = text.rpartition(":")
        if sep and path.endswith(".py") and name.replace(".", "").replace("_", "").isalnum():
            if not Path(path).is_file():
                raise TargetError(text, f"no such file {path!r}")
            return Target("callable", f"{Path(path).resolve()}:{name}")
    return Target("pytest", text)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GrowingRecord:
    """A loss record (matched by kind and stack) that grew between the N and 2N runs."""

    kind: str
    frames: tuple[Frame, ...]
    bytes_n: int
    bytes_2n: int
    blocks_n: int
    blocks_2n: int
    iterations: int
    suppression: str | None = field(default=None, compare=False)

    @property
    def per_iteration_bytes(self) -> float:
        """Bytes lost per iteration: ``(bytes(2N) - bytes(N)) / N``."""
        return (self.bytes_2n - self.bytes_n) / self.iterations

    @property
    def per_iteration_blocks(self) -> float:
        """Blocks lost per iteration: ``(blocks(2N) - blocks(N)) / N``."""
        return (self.blocks_2n - self.blocks_n) / self.iterations

    @property
    def short_kind(self) -> str:
        """``definite``, ``indirect`` or ``possible``."""
        return LossRecord(self.kind, 0, 0, ()).short_kind

    def format(self, max_frames: int = 12) -> str:
        """The record's headline and its stack, interpreter frames folded."""
        head = (
            f"{_KIND_WORDS.get(self.kind, self.kind)} {format_size(self.per_iteration_bytes)}/iteration "
            f"({self.per_iteration_blocks:g} blocks/iteration; {format_size(self.bytes_n)} in "
            f"{self.blocks_n} blocks after N={self.iterations}, {format_size(self.bytes_2n)} in "
            f"{self.blocks_2n} after 2N)"
        )
        return "\n".join([head, *_format_stack(self.frames, max_frames)])

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping, with the per-iteration figures and the frames."""
        return {
            "kind": self.kind,
            "per_iteration_bytes": self.per_iteration_bytes,
            "per_iteration_blocks": self.per_iteration_blocks,
            "bytes_n": self.bytes_n,
            "bytes_2n": self.bytes_2n,
            "blocks_n": self.blocks_n,
            "blocks_2n": self.blocks_2n,
            "frames": [frame.to_dict() for frame in self.frames],
            "suppression": self.suppression,
        }


@dataclass(frozen=True)
class ValgrindReport:
    """The verdict of a memcheck run of one target; ``str()`` is the short verdict.

    ``status`` is ``clean``, ``leaking`` (definitely + indirectly lost per iteration
    reached the limit), ``crashed`` (a child died by a signal or left truncated XML),
    ``timeout`` or ``failed`` (a child exited non-zero: the test failed, or the
    target could not be loaded).  For the last three, ``log_path`` names the kept log
    and ``message`` says what happened.
    """

    status: Status
    target: str
    iterations: int
    warmup: int
    per_iteration_definite: float = 0.0
    per_iteration_indirect: float = 0.0
    per_iteration_possible: float = 0.0
    records: tuple[GrowingRecord, ...] = ()
    dropped_records: int = 0
    memcheck_errors: int = 0
    log_path: str | None = None
    message: str = ""
    elapsed_seconds: float = 0.0
    min_bytes_per_iteration: float = DEFAULT_MIN_BYTES
    top: int = field(default=DEFAULT_TOP, compare=False)

    @property
    def ok(self) -> bool:
        """True only for ``clean``."""
        return self.status == "clean"

    @property
    def per_iteration_lost(self) -> float:
        """Definitely plus indirectly lost bytes per iteration."""
        return self.per_iteration_definite + self.per_iteration_indirect

    def __str__(self) -> str:
        runs = f"N={self.iterations} and 2N={2 * self.iterations} iterations after {self.warmup} warm-up"
        if self.status in ("crashed", "timeout", "failed"):
            lines = [f"valgrind memcheck: {self.status.upper()} - {self.target}: {self.message}"]
            if self.log_path:
                lines.append(f"  valgrind's log kept at {self.log_path}")
            return "\n".join(lines)
        lines = [
            f"valgrind memcheck: {self.status.upper()} - {self.target}",
            (
                f"  definitely lost {format_size(self.per_iteration_definite)}/iteration, "
                f"indirectly lost {format_size(self.per_iteration_indirect)}/iteration (limit "
                f"{format_size(self.min_bytes_per_iteration)}/iteration together); possibly lost "
                f"{format_size(self.per_iteration_possible)}/iteration (not judged)"
            ),
            (
                f"  {runs}, {self.elapsed_seconds:.1f}s; {len(self.records)} growing loss "
                f"record(s), {self.dropped_records} outside focus dropped, "
                f"{self.memcheck_errors} other memcheck error(s)"
            ),
        ]
        if self.message:
            lines.append(f"  {self.message}")
        for index, record in enumerate(self.records[: self.top], 1):
            body = record.format().replace("\n", "\n  ")
            lines.append(f"  #{index} {body}")
        if len(self.records) > self.top:
            lines.append(f"  ... {len(self.records) - self.top} more record(s) in the JSON report")
        if self.log_path:
            lines.append(f"  files kept in {self.log_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping for ``results.json``."""
        return {
            "tool": "valgrind-memcheck",
            "status": self.status,
            "target": self.target,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "per_iteration_definite": self.per_iteration_definite,
            "per_iteration_indirect": self.per_iteration_indirect,
            "per_iteration_possible": self.per_iteration_possible,
            "min_bytes_per_iteration": self.min_bytes_per_iteration,
            "records": [record.to_dict() for record in self.records],
            "dropped_records": self.dropped_records,
            "memcheck_errors": self.memcheck_errors,
            "log_path": self.log_path,
            "message": self.message,
            "elapsed_seconds": self.elapsed_seconds,
        }


# --------------------------------------------------------------------------- analysis


def _is_core(frame: Frame) -> bool:
    if frame.obj is None:
        return False
    name = Path(frame.obj).name
    return any(fnmatchcase(name, pattern) for pattern in _CORE_OBJECTS)


def _matches_focus(frame: Frame, focus: Sequence[str]) -> bool:
    fields = [frame.obj, Path(frame.obj).name if frame.obj else None, frame.fn, frame.file]
    return any(
        value is not None and fnmatchcase(value, pattern) for pattern in focus for value in fields
    )


def _in_focus(record: LossRecord, focus: Sequence[str]) -> bool:
    if focus:
        return any(_matches_focus(frame, focus) for frame in record.frames)
    # Default: some frame outside the interpreter and the C library (an extension's .so).
    return any(not _is_core(frame) for frame in record.frames)


def _is_lifecycle(record: LossRecord) -> bool:
    return any(frame.fn in _LIFECYCLE_FUNCTIONS for frame in record.frames)


def _format_stack(frames: Sequence[Frame], max_frames: int) -> list[str]:
    lines: list[str] = []
    hidden = 0
    shown = 0
    after_user = 0
    for index, frame in enumerate(frames):
        interesting = not _is_core(frame)
        keep = index == 0 or interesting or after_user > 0 or frame.fn in _ALLOCATORS
        after_user = 2 if interesting else max(after_user - 1, 0)
        if not keep or shown >= max_frames:
            hidden += 1
            continue
        if hidden:
            lines.append(f"    ... {hidden} interpreter frame(s)")
            hidden = 0
        lines.append(f"    {'at' if index == 0 else 'by'} {frame}")
        shown += 1
    if hidden:
        lines.append(f"    ... {hidden} more frame(s)")
    return lines


def _group(records: Iterable[LossRecord]) -> dict[tuple[object, ...], list[LossRecord]]:
    groups: dict[tuple[object, ...], list[LossRecord]] = {}
    for record in records:
        groups.setdefault((record.kind, record.stack_key), []).append(record)
    return groups


def compare_runs(
    run_n: MemcheckRun,
    run_2n: MemcheckRun,
    iterations: int,
    *,
    focus: Sequence[str] = (),
    min_blocks_fraction: float = 0.25,
) -> tuple[tuple[GrowingRecord, ...], int]:
    """Match loss records of the N and 2N runs by stack; return the growing ones.

    A record grows when its bytes rose and it gained at least one block per
    ``1 / min_blocks_fraction`` iterations (so a single stray block is not a leak).
    Start-up/shutdown records are ignored; growing records outside ``focus`` (by
    default: stacks made only of interpreter and C library frames) are counted in the
    second element of the result instead.  Records are sorted by bytes per iteration.
    """
    low = _group(r for r in run_n.records if not _is_lifecycle(r))
    high = _group(r for r in run_2n.records if not _is_lifecycle(r))
    growing: list[GrowingRecord] = []
    dropped = 0
    min_blocks = max(1, int(iterations * min_blocks_fraction + 0.999))
    for key, records in high.items():
        before = low.get(key, [])
        bytes_n, blocks_n = sum(r.bytes for r in before), sum(r.blocks for r in before)
        bytes_2n, blocks_2n = sum(r.bytes for r in records), sum(r.blocks for r in records)
        if bytes_2n <= bytes_n or blocks_2n - blocks_n < min_blocks:
            continue
        if not _in_focus(records[0], focus):
            dropped += 1
            continue
        growing.append(
            GrowingRecord(
                kind=records[0].kind,
                frames=records[0].frames,
                bytes_n=bytes_n,
                bytes_2n=bytes_2n,
                blocks_n=blocks_n,
                blocks_2n=blocks_2n,
                iterations=iterations,
                suppression=records[0].suppression,
            )
        )
    growing.sort(key=lambda g: (-g.per_iteration_bytes, LEAK_KINDS.index(g.kind)))
    return tuple(growing), dropped


# --------------------------------------------------------------------------- running


def default_suppressions() -> Path:
    """The CPython suppression file shipped in ``leakcheck/data``."""
    return Path(__file__).resolve().parent / "data" / "valgrind-python.supp"


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
    package_root = str(Path(__file__).resolve().parent.parent)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + old if old else "")
    return env


def _valgrind_command(
    valgrind: str, xml_path: Path, suppressions: Sequence[Path], extra: Sequence[str]
) -> list[str]:
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
        procs = []
        for iterations, command in batch:
            log_path = work / f"memcheck-{iterations}.log"
            log = open(log_path, "wb")  # noqa: SIM115 - closed once the child has exited
            proc = subprocess.Popen(
                [*valgrind_args[iterations], *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
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
            results[iterations] = _Child(
                iterations, proc.returncode, timed_out, xml_path, log_path, run
            )
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
        return "timeout", f"the run with {n} iterations was killed after {timeout:g}s"
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
) -> ValgrindReport:
    """Run ``target`` under memcheck with N and 2N iterations; report what grows.

    ``target`` is ``"path/to/file.py:function"`` or a pytest node id (see
    :func:`parse_target`).  ``suppressions`` are added to the shipped CPython file;
    ``focus`` patterns (fnmatch, against each frame's object path or name, function
    and source file) select the loss records that count — by default those whose stack
    has a frame outside the interpreter and the C library.  ``include_possible`` makes
    possibly-lost bytes count towards the limit.  Temporary files are removed unless
    ``keep`` or the run crashed, timed out or failed.

    Raises :class:`ValgrindNotFoundError` when valgrind is missing and
    :class:`ValgrindError` for bad arguments; a crash or timeout of the child is a
    report status, not an exception.
    """
    if iterations < 1:
        raise ConfigError("iterations", iterations, "must be >= 1", "run_valgrind()")
    if warmup < 0:
        raise ConfigError("warmup", warmup, "must be >= 0", "run_valgrind()")
    valgrind_path = find_valgrind(valgrind)
    spec = target if isinstance(target, Target) else parse_target(target)
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
    work = Path(tempfile.mkdtemp(prefix="leakcheck-valgrind-"))
    started = time.monotonic()
    counts = (iterations, 2 * iterations)
    commands = [(n, spec.command(python_exe, n, warmup)) for n in counts]
    vg_args = {
        n: _valgrind_command(
            valgrind_path, work / f"memcheck-{n}.xml", supp_files, list(valgrind_args)
        )
        for n in counts
    }
    children = _run_children(
        commands,
        work,
        vg_args,
        _child_env(env),
        str(cwd) if cwd is not None else None,
        timeout,
        parallel,
    )
    elapsed = time.monotonic() - started
    common = {
        "target": str(target),
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
        return ValgrindReport(
            status=status,
            message=message,
            log_path=str(bad.log_path),
            **common,  # type: ignore[arg-type]
        )
    run_n, run_2n = (c.run for c in children)
    assert run_n is not None and run_2n is not None
    records, dropped = compare_runs(run_n, run_2n, iterations, focus=focus)
    per_kind = {
        kind: sum(r.per_iteration_bytes for r in records if r.kind == kind) for kind in LEAK_KINDS
    }
    judged = per_kind["Leak_DefinitelyLost"] + per_kind["Leak_IndirectlyLost"]
    if include_possible:
        judged += per_kind["Leak_PossiblyLost"]
    status = "leaking" if judged >= min_bytes_per_iteration else "clean"
    if keep:
        log_path: str | None = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
        log_path = None
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


# --------------------------------------------------------------------------- command line


def add_valgrind_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``leakcheck valgrind`` arguments to ``parser`` (a subparser or a new one)."""
    parser.add_argument(
        "target",
        help="A pytest node id of a @pytest.mark.leak test, or path/to/file.py:function",
    )
    parser.add_argument(
        "iterations",
        nargs="?",
        type=int,
        default=None,
        help=f"Iterations of the shorter run; the longer runs twice as many (default {DEFAULT_ITERATIONS})",
    )
    parser.add_argument(
        "--iterations",
        dest="iterations_option",
        type=int,
        default=None,
        help="Same as the ITERATIONS positional",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"Untracked calls before the iterations (default {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--suppressions",
        action="append",
        default=[],
        metavar="FILE",
        help="Extra valgrind suppression file (repeatable)",
    )
    parser.add_argument(
        "--focus",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Only count loss records with a frame whose object, function or "
        "file matches this fnmatch pattern (repeatable; default: any frame "
        "outside the interpreter and libc)",
    )
    parser.add_argument(
        "--valgrind",
        default="valgrind",
        metavar="PATH",
        help="The valgrind executable (default: valgrind on PATH)",
    )
    parser.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="The python that runs the target (default: this one)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"Kill a run after this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--min-bytes",
        type=float,
        default=DEFAULT_MIN_BYTES,
        metavar="BYTES",
        help="Definitely+indirectly lost bytes per iteration that count as "
        f"a leak (default {DEFAULT_MIN_BYTES:g})",
    )
    parser.add_argument(
        "--include-possible",
        action="store_true",
        help="Count possibly-lost bytes towards the limit too",
    )
    parser.add_argument(
        "--top", type=int, default=DEFAULT_TOP, help=f"Loss records to show (default {DEFAULT_TOP})"
    )
    parser.add_argument(
        "--serial",
        action="store_true",
        help="Run the two valgrind runs one after the other, not in parallel",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Keep valgrind's XML and logs (their directory is printed)",
    )
    parser.add_argument(
        "--json", default=None, metavar="FILE", help="Also write the report as JSON to FILE"
    )
    parser.add_argument(
        "--valgrind-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="Extra argument for valgrind, e.g. --valgrind-arg=--track-origins=yes",
    )
    return parser


EXIT_CLEAN, EXIT_LEAKING, EXIT_USAGE, EXIT_BROKEN = 0, 1, 2, 3


def run_valgrind_command(args: argparse.Namespace) -> int:
    """Run the ``leakcheck valgrind`` command; return 0 clean, 1 leaking, 2 usage, 3 broken."""
    iterations = args.iterations_option or args.iterations or DEFAULT_ITERATIONS
    try:
        report = run_valgrind(
            args.target,
            iterations=iterations,
            warmup=args.warmup,
            suppressions=args.suppressions,
            focus=args.focus,
            valgrind=args.valgrind,
            python=args.python,
            timeout=args.timeout,
            keep=args.keep,
            parallel=not args.serial,
            min_bytes_per_iteration=args.min_bytes,
            include_possible=args.include_possible,
            valgrind_args=args.valgrind_arg,
            top=args.top,
        )
    except LeakcheckError as exc:
        print(f"leakcheck valgrind: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {"clean": EXIT_CLEAN, "leaking": EXIT_LEAKING}.get(report.status, EXIT_BROKEN)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m leakcheck.valgrind TARGET [ITERATIONS] [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m leakcheck.valgrind",
        description="Run a leak test under valgrind memcheck and report the native memory "
        "it loses per iteration. Exit status: 0 clean, 1 leaking, 2 usage error or "
        "valgrind missing, 3 the run crashed, timed out or failed.",
    )
    add_valgrind_arguments(parser)
    args = parser.parse_args(argv)
    return run_valgrind_command(args)


if __name__ == "__main__":
    sys.exit(main())
