"""How often memray's tracker kills the process, with and without leakcheck's guard.

memray 1.20 (Python before 3.13) walks every thread state to install or remove
its profile hook, raising an audit event at each; leakcheck's audit hook runs
Python code there, and a GIL hand-over in the walk lets a thread that is
exiting free its state under it (SIGSEGV). ``memray_window._gil_kept`` keeps
the GIL for the walk. This script runs a scenario whose step opens and closes
an aiosqlite connection (a worker thread that exits) per iteration, with a
planted leak so the memray window opens, several times in fresh processes,
running "guarded" (as shipped) and "unguarded" (the guard replaced by a
no-op) side by side, each from a copy of the tree, beside CPU-burning
processes (the crash needs a loaded machine), and prints how many runs of
each died by a signal.

    python -m benchmarks.memray_crash [--runs 20] [--burn 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .report import command_line, machine_facts, update_section

ROOT = Path(__file__).resolve().parents[1]
NODEID = "scenarios/test_cleanup_leaks.py::test_temp_database_created_and_deleted"
FAULT = "temp_db_not_deleted"
FLAGS = ("--leak-iterations=60", "--leak-warmup=5", "--leak-attribution-iterations=20")

#: As the fault tests run a scenario: leave with os._exit (leaked aiosqlite threads never end).
#: The child runs with ``-X faulthandler``, which made the crash more likely here (5 of 20
#: runs against 1 of 20 in one paired trial), so a difference shows in fewer runs.
_CHILD = "import os, sys, pytest; code = pytest.main(sys.argv[1:]); sys.stdout.flush(); os._exit(int(code))"
_GUARD = "with _gil_kept():"
#: One scenario test in the child, as tests/test_scenarios_faults.py runs them.
_PYTEST = ("-p", "no:cacheprovider", "-p", "no:xdist", "-m", "leak")


def _burn() -> None:
    while True:
        pass


def _tree_copy(into: Path, *, guarded: bool) -> Path:
    """The package, the scenarios and the ini in ``into``; without the guard unless ``guarded``.

    The child runs with this copy as its rootdir: pytest puts the rootdir first
    on ``sys.path`` (``pythonpath = ["."]``), so a copy of the package alone
    would lose to the checkout's.
    """
    shutil.copytree(ROOT / "leakcheck", into / "leakcheck", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scenarios", into / "scenarios", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", into / "pyproject.toml")
    if not guarded:
        window = into / "leakcheck" / "attribution" / "memray_window.py"
        text = window.read_text(encoding="utf-8")
        if text.count(_GUARD) != 2:
            raise SystemExit(f"memray_crash: expected the guard twice in {window}; update this benchmark")
        window.write_text(text.replace(_GUARD, "if True:"), encoding="utf-8")
    return into


def _stream(runs: int, tree: Path, codes: list[int], label: str) -> None:
    """``runs`` children one after another; each exit status appended to ``codes``."""
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="leakcheck-crashbench-") as tmp:
            env = {
                **os.environ,
                "THINGS3_FAULTS": FAULT,
                "THINGS3_TASKS": "2000",
                "TMPDIR": tmp,
                "PYTHONPATH": str(tree),
            }
            argv = [sys.executable, "-X", "faulthandler", "-c", _CHILD, *_PYTEST]
            done = subprocess.run(
                [*argv, *FLAGS, "-q", NODEID], cwd=tree, env=env, capture_output=True, timeout=300, check=False
            )
        codes.append(done.returncode)
        print(f"run {i + 1:>3} {label:<9} exit {done.returncode}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print (and record) the crash counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each variant (default 20)")
    parser.add_argument("--burn", type=int, default=1, help="CPU-burning processes beside the runs (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burn)]
    for b in burners:
        b.start()
    outcomes: dict[str, list[int]] = {"guarded": [], "unguarded": []}
    try:
        with tempfile.TemporaryDirectory(prefix="leakcheck-trees-") as copies:
            trees = {v: _tree_copy(Path(copies) / v, guarded=v == "guarded") for v in outcomes}
            # Both variants at once, each a stream of fresh processes: the same load for each.
            streams = [threading.Thread(target=_stream, args=(args.runs, trees[v], outcomes[v], v)) for v in outcomes]
            for t in streams:
                t.start()
            for t in streams:
                t.join()
    finally:
        for b in burners:
            b.terminate()
    rows = ["| variant | runs | verdict reported (exit 1) | killed by a signal | other exit |", "|---|---|---|---|---|"]
    for variant, codes in outcomes.items():
        signalled = sum(1 for c in codes if c < 0 or c >= 128)
        ok = sum(1 for c in codes if c == 1)
        rows.append(f"| {variant} | {len(codes)} | {ok} | {signalled} | {len(codes) - ok - signalled} |")
    table = "\n".join(rows)
    print(table)
    if not args.no_write:
        body = (
            "## memray's tracker crash, with and without the GIL guard (memray_crash)\n\n"
            f"`{command_line()}`: `{NODEID}` with `THINGS3_FAULTS={FAULT}`, fresh process per run, "
            f"{args.burn} CPU burner(s) beside.\n\n{machine_facts()}\n\n{table}\n"
        )
        update_section("memray_crash", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
