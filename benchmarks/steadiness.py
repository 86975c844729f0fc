"""Is the project's own suite steady? ``pytest -n 2`` several times, then a serial run beside CPU burners.

Issue 14 asks for 5 passing runs out of 5 under ``-n 2`` and a passing serial
run with two CPU-burning processes beside it, on one commit. This script runs
exactly that from a tree (this checkout by default; a clean worktree of the
commit is better: nothing else may write into it while it runs) and prints one
row per run: exit code, wall time, the summary line and every failed or erred
test (from ``-rfE``), so a flake is named, not just counted.

    python -m benchmarks.steadiness [--runs 5] [--burners 2] [--tree DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .report import command_line, machine_facts, update_section

ROOT = Path(__file__).resolve().parent.parent
#: The suite as .ci/run runs it, less the cache (a second run must not reorder from the first's).
PYTEST = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"]


@dataclass(frozen=True)
class Run:
    """One run of the suite: how it was run and what it said."""

    label: str
    exit_code: int
    seconds: float
    summary: str
    failures: tuple[str, ...]


def run_suite(tree: Path, label: str, extra: list[str], burners: int, log: Path) -> Run:
    """Run the suite once in ``tree`` with ``extra`` pytest arguments, ``burners`` busy processes beside it."""
    burning = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL) for _ in range(burners)
    ]
    started = time.monotonic()
    try:
        env = dict(os.environ, PYTHONPATH=str(tree))  # the tree's own leakcheck, even beside an editable install
        with log.open("w") as out:
            rc = subprocess.call(
                [sys.executable, *PYTEST, *extra], cwd=tree, stdout=out, stderr=subprocess.STDOUT, env=env
            )
    finally:
        for p in burning:
            p.kill()
            p.wait()
    seconds = time.monotonic() - started
    lines = log.read_text(errors="replace").splitlines()
    failures = tuple(line for line in lines if line.startswith(("FAILED ", "ERROR ")))
    summary = next((line.strip("= ") for line in reversed(lines) if " in " in line and "=" in line), "")
    if not summary and lines:
        summary = lines[-1].strip()
    return Run(label, rc, seconds, summary, failures)


def _commit(tree: Path) -> str:
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"], check=False, cwd=tree, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown (not a git checkout)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the project's suite repeatedly and under load; print each run")
    parser.add_argument("--runs", type=int, default=5, help="Runs under -n 2 (default 5)")
    parser.add_argument("--burners", type=int, default=2, help="CPU burners beside the serial run (default 2)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="The checkout to run the suite in (default: this one)")
    parser.add_argument("--logs", type=Path, default=None, help="Keep each run's output here (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    if not (tree / "tests").is_dir():
        parser.error(f"--tree {tree}: no tests/ folder there; give the root of a leakcheck checkout")
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="bench-steadiness-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        plan = [(f"-n 2, run {i}", ["-n", "2"], 0) for i in range(1, args.runs + 1)]
        plan.append((f"serial, {args.burners} CPU burners beside", ["-p", "no:xdist"], args.burners))
        runs = []
        for n, (label, extra, burners) in enumerate(plan, 1):
            run = run_suite(tree, label, extra, burners, logs / f"run-{n}.log")
            runs.append(run)
            print(f"{label}: exit {run.exit_code} in {run.seconds:.0f} s: {run.summary}", flush=True)
            for failure in run.failures:
                print(f"    {failure}", flush=True)
    passed = sum(r.exit_code == 0 for r in runs)
    rows = [
        "| run | exit | wall | pytest's summary | failed or erred |",
        "|---|---|---|---|---|",
        *(
            f"| {r.label} | {r.exit_code} | {r.seconds:.0f} s | {r.summary} | "
            f"{'; '.join(f.split(' - ')[0] for f in r.failures) or 'none'} |"
            for r in runs
        ),
    ]
    print(f"{passed}/{len(runs)} runs passed")
    if not args.no_write:
        body = "\n".join(
            [
                "## The project's own suite, repeated and under load (steadiness)",
                "",
                f"Command: `{command_line()}`, in a tree at commit {_commit(tree)}; {passed}/{len(runs)} runs passed.",
                "",
                facts,
                "",
                *rows,
            ]
        )
        update_section("steadiness", body)
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
