"""A real third-party suite under ``--leak-all``: multidict, a C extension with documented, fixed leaks.

multidict's changelog lists leaks in its C extension: 6.4.0 fixed one creating
``istr`` objects (introduced in 6.3.0, #1133) and a reference-count leak in
``MultiDict.update`` (since 4.4.0, #1135); 6.6.4 fixed one when deleting
values or clearing a multidict (#1233). For each release given, this script:

1. builds a venv in a temp dir (``python -m venv``) with pytest, pytest-xdist,
   psutil, memray and that release's **wheel** of multidict; leakcheck is this
   checkout, put on ``PYTHONPATH`` and loaded with ``-p leakcheck.plugin``;
2. takes ``tests/`` from the release's sdist (``pip download --no-binary``)
   with a minimal ``pytest.ini`` (the sdist's own adds coverage and doctests
   of the source tree, which the wheel does not ship); the benchmark files
   (they need pytest-codspeed) and ``test_mypy.py`` (mypy) are left out;
3. runs the suite plainly, then with ``--leak-all -n WORKERS --leak-report``
   under a time limit, and prints: wall time of each, tests judged, the
   leaking tests (by file, C extension vs pure Python), not repeatable and not
   judged counts, report size and peak RSS (sum over the pytest process tree,
   sampled every 0.2 s).

Ground truth, stated before running and never adjusted: on a leaky release
the leaking tests are C-extension tests of the leaking paths; on a fixed one
no C-extension test of those paths leaks; a pure-Python test should never
leak (one that does is a false positive).

    python -m benchmarks.thirdparty [--versions 6.3.2 6.6.4] [--workers 2] [--timeout 2400] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .report import command_line, machine_facts, update_section

ROOT = Path(__file__).resolve().parent.parent
# objgraph: multidict's own tests/test_leaks.py scripts import it (without it they fail plainly).
PACKAGES = ["pytest", "pytest-xdist", "psutil", "memray", "objgraph"]
LEFT_OUT = ["tests/test_multidict_benchmarks.py", "tests/test_views_benchmarks.py", "tests/test_mypy.py"]
INI = """[pytest]
markers =
    leaks: memory leak tests
    c_extension: tests of the C extension
filterwarnings = error
xfail_strict = true
testpaths = tests
"""


@dataclass
class Run:
    """One pytest run: its wall time, exit code, peak RSS and last lines."""

    seconds: float
    code: int
    peak_rss: int
    timed_out: bool
    tail: str


@dataclass
class Outcome:
    """What one release's two runs gave."""

    version: str
    plain: Run
    leak: Run
    counts: Counter[str] = field(default_factory=Counter)
    leaking: list[str] = field(default_factory=list)
    not_repeatable: list[str] = field(default_factory=list)
    report_bytes: int = 0
    flamegraphs: int = 0
    leak_seconds: list[float] = field(default_factory=list)
    clean_seconds: list[float] = field(default_factory=list)  #: leak runs of the tests that passed
    outcomes: dict[str, str] = field(default_factory=dict)  #: normalised id -> outcome


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path) -> Run:
    """Run ``cmd``; SIGINT at ``timeout`` (pytest then still writes its report), kill 180 s later."""
    import psutil

    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        peak, timed_out = 0, False
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            elapsed = time.perf_counter() - t0
            if not timed_out and elapsed > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGINT)
            if timed_out and elapsed > timeout + 180:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.2)
    seconds = time.perf_counter() - t0
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:])
    return Run(seconds, proc.returncode, peak, timed_out, tail)


def _prepare(version: str, work: Path) -> tuple[Path, Path]:
    """The venv's python and the suite directory for ``version``."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES, "--only-binary", "multidict", f"multidict=={version}"], check=True)
    sdist_dir = work / "sdist"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "download",
            "-q",
            "--disable-pip-version-check",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(sdist_dir),
            f"multidict=={version}",
        ],
        check=True,
    )
    archive = next(sdist_dir.glob("multidict-*.tar.gz"))
    suite = work / "suite"
    with tarfile.open(archive) as tar:
        top = f"multidict-{version}/tests/"
        members = [m for m in tar.getmembers() if m.name.startswith(top)]
        for m in members:
            m.name = m.name[len(f"multidict-{version}/") :]
        tar.extractall(suite, members=members, filter="data")
    (suite / "pytest.ini").write_text(INI, encoding="utf-8")
    return python, suite


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(version: str, work: Path, workers: int, timeout: float) -> Outcome:
    """Both runs of one release; the leak run's report lands in ``work/report``."""
    python, suite = _prepare(version, work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "LEAKCHECK"))}
    # Only the leakcheck package on the path: the checkout's own tests/ and conftest must not shadow multidict's.
    path = work / "path"
    path.mkdir(exist_ok=True)
    if not (path / "leakcheck").exists():
        (path / "leakcheck").symlink_to(ROOT / "leakcheck", target_is_directory=True)
    env["PYTHONPATH"] = str(path)
    base = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    base += [f"--ignore={p}" for p in LEFT_OUT]
    plain = _run(base, suite, env, timeout, work / "plain.log")
    report = work / "report"
    leak = _run(
        [*base, "-p", "leakcheck.plugin", "--leak-all", f"--leak-report={report}"],
        suite,
        env,
        timeout,
        work / "leak.log",
    )
    outcome = Outcome(version, plain, leak)
    _read_report(outcome, report)
    (work / "outcome.json").write_text(json.dumps({"version": version, "plain": plain.__dict__, "leak": leak.__dict__}))
    return outcome


def _read_report(outcome: Outcome, report: Path) -> None:
    """Counts, leaking ids and sizes from the leak run's report."""
    results = report / "results.json"
    outcome.outcomes = {}
    if results.is_file():
        data = json.loads(results.read_text(encoding="utf-8"))
        for t in data["tests"]:
            outcome.counts[t["outcome"]] += 1
            outcome.outcomes[_norm(t["id"])] = t["outcome"]
            if t["outcome"] == "leaking":
                outcome.leaking.append(t["id"])
                if t.get("leak_seconds") is not None:
                    outcome.leak_seconds.append(t["leak_seconds"])
            elif t["outcome"] == "passed" and t.get("leak_seconds") is not None:
                outcome.clean_seconds.append(t["leak_seconds"])
            elif t["outcome"] == "not_repeatable":
                outcome.not_repeatable.append(t["id"])
        outcome.report_bytes = _size(report)
        outcome.flamegraphs = len(list(report.glob("tests/*/flamegraph.html")))


def load(work: Path) -> Outcome:
    """An earlier measurement kept in ``work`` (``--keep``), for ``--render-only``."""
    saved = json.loads((work / "outcome.json").read_text())
    outcome = Outcome(saved["version"], Run(**saved["plain"]), Run(**saved["leak"]))
    _read_report(outcome, work / "report")
    return outcome


def _kind(test_id: str) -> str:
    """C extension or pure Python, from the parameter ids (6.3 spells them out, 6.6 writes c / py)."""
    params = test_id.partition("[")[2].rstrip("]").split("-")
    if "pure" in params or "py" in params:
        return "pure-python"
    if "c" in params or "extension" in params:
        return "c-extension"
    return "other"


def _norm(test_id: str) -> str:
    """A test id spelled the way 6.6 does, so releases can be compared test by test."""
    for long, short in (
        ("case-insensitive-", "ci-"),
        ("case-sensitive-", "cs-"),
        ("c-extension-module", "c"),
        ("pure-python-module", "py"),
    ):
        test_id = test_id.replace(long, short)
    return test_id


def _by_file(ids: list[str]) -> str:
    groups: Counter[str] = Counter()
    for test_id in ids:
        kind = _kind(test_id)
        groups[f"{test_id.split('::', 1)[0]} ({kind})"] += 1
    return ", ".join(f"{name}: {n}" for name, n in sorted(groups.items())) or "none"


def _median(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.2f} s"


def render(outcomes: list[Outcome], workers: int, timeout: float) -> str:
    """The RESULTS.md section."""
    lines = [
        "## A real suite under --leak-all: multidict (`benchmarks/thirdparty.py`)",
        "",
        machine_facts(),
        f"- Command: `{command_line()}`",
        (
            f"- Each release's wheel, the tests/ of its sdist (less {', '.join(LEFT_OUT)}), "
            f"`-n {workers}` for both runs, a {timeout:.0f} s limit per run"
        ),
        "",
        (
            "| release | plain run | --leak-all run | leak tests | leaking | not repeatable | not judged | errors "
            "| report | flamegraphs | peak RSS (tree) | leaking test's leak run, median | passing test's, median |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        limit = " (time limit hit)" if o.leak.timed_out else ""
        lines.append(
            f"| {o.version} | {o.plain.seconds:.1f} s (exit {o.plain.code}) | {o.leak.seconds:.0f} s{limit} "
            f"(exit {o.leak.code}) | {sum(o.counts.values())} | {o.counts['leaking']} | {o.counts['not_repeatable']} "
            f"| {o.counts['not_judged']} | {o.counts['error']} | {o.report_bytes / 2**20:.1f} MiB | {o.flamegraphs} "
            f"| {o.leak.peak_rss / 2**20:.0f} MiB | {_median(o.leak_seconds)} | {_median(o.clean_seconds)} |"
        )
    lines.append("")
    for o in outcomes:
        lines.append(f"- **{o.version}** leaking tests by file: {_by_file(o.leaking)}")
        if o.not_repeatable:
            lines.append(f"  - not repeatable: {_by_file(o.not_repeatable)}")
    for old, new in zip(outcomes, outcomes[1:]):
        leaked = [i for i, v in old.outcomes.items() if v == "leaking"]
        later = Counter(new.outcomes.get(i, "not run") for i in leaked)
        still = sorted(i for i in leaked if new.outcomes.get(i) == "leaking")
        lines.append(
            f"- Of the {len(leaked)} tests leaking on {old.version}, on {new.version}: "
            + ", ".join(f"{n} {k}" for k, n in later.most_common())
        )
        if still:
            lines.append(f"  - still leaking on {new.version}: " + ", ".join(f"`{i}`" for i in still))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure each release, print the table and the leaking test ids, update RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions", nargs="+", default=["6.3.2", "6.6.4"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2400.0, help="seconds per pytest run")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir, removed)")
    parser.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    parser.add_argument("--render-only", action="store_true", help="re-render from the runs kept in --keep DIR")
    args = parser.parse_args(argv)
    if args.render_only:
        if not args.keep:
            parser.error("--render-only needs --keep DIR (where the runs were kept)")
        kept = [load(Path(args.keep) / f"multidict-{v}") for v in args.versions]
        body = render(kept, args.workers, args.timeout)
        print(body)
        if not args.no_write:
            update_section("thirdparty", body)
        return 0
    holder = None if args.keep else tempfile.TemporaryDirectory(prefix="leakcheck-thirdparty-")
    root = Path(args.keep or holder.name)  # type: ignore[union-attr]
    outcomes = []
    try:
        for version in args.versions:
            work = root / f"multidict-{version}"
            work.mkdir(parents=True, exist_ok=True)
            print(f"multidict {version}: preparing in {work}", file=sys.stderr, flush=True)
            o = measure(version, work, args.workers, args.timeout)
            outcomes.append(o)
            print(
                f"multidict {version}: plain {o.plain.seconds:.1f} s, --leak-all {o.leak.seconds:.0f} s, "
                f"{dict(o.counts)}, leak run median: leaking {_median(o.leak_seconds)}, "
                f"passing {_median(o.clean_seconds)}",
                file=sys.stderr,
                flush=True,
            )
            print(o.leak.tail, file=sys.stderr)
            for test_id in o.leaking:
                print(f"  leaking: {test_id}", file=sys.stderr)
    finally:
        if holder is not None:
            holder.cleanup()
    body = render(outcomes, args.workers, args.timeout)
    print(body)
    if not args.no_write:
        update_section("thirdparty", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
