"""Scale: a 200-test leak suite under ``-n 2``, and the harness's own memory over a long session.

1. A generated file of 200 ``@pytest.mark.leak`` tests (150 clean small steps,
   50 leaking one object per iteration) run by pytest in a subprocess with
   ``-n 2``; the same file with ``--leak-mode once`` (each body once, no
   measuring) gives the session's cost without leakcheck. Each worker records
   its RSS at session start and end.
2. ``leakcheck.check()`` run 500 times on a clean step in one process: live
   pymalloc blocks and RSS after the first 20 checks vs after the last. The
   harness must not leak: growth per check should be ~0.
3. The pytest process itself over a long session: ``--session-tests`` clean
   leak tests in one process (no xdist), with and without ``--leak-report``,
   and the same tests with ``--leak-mode once``; live pymalloc blocks and RSS
   after test 50 vs after the last, per test. The target is at most ~2 KiB
   kept per leak test (results are spilled to disk, only a summary is kept).

    python -m benchmarks.scale [--tests 200] [--checks 500] [--session-tests 400]
    python -m benchmarks.scale --only-session --no-write   # just part 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .report import command_line, machine_facts, update_section

_TESTS = """
import pytest

_kept = []


def _clean_step():
    return {{i: str(i) for i in range(20)}}


{tests}
"""

_CLEAN = """
@pytest.mark.leak
def test_clean_{i}():
    _clean_step()
"""

_LEAKY = """
@pytest.mark.leak
def test_leaky_{i}():
    _kept.append(object())
"""

_CONFTEST = """
import json, os
import psutil

_start = {}


def pytest_sessionstart(session):
    _start["rss"] = psutil.Process().memory_info().rss


def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    rss = psutil.Process().memory_info().rss
    with open(os.path.join(os.environ["BENCH_RSS_DIR"], worker + ".json"), "w") as fh:
        json.dump({"start": _start.get("rss", 0), "end": rss}, fh)
"""


def suite(n_tests: int, mode: str) -> dict[str, object]:
    """Run the generated suite; return wall time, outcome counts and worker RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        n_leaky = n_tests // 4
        body = "".join(_LEAKY.format(i=i) for i in range(n_leaky))
        body += "".join(_CLEAN.format(i=i) for i in range(n_tests - n_leaky))
        Path(tmp, "test_suite.py").write_text(_TESTS.format(tests=body))
        Path(tmp, "conftest.py").write_text(_CONFTEST)
        Path(tmp, "pytest.ini").write_text("[pytest]\n")
        rss_dir = Path(tmp, "rss")
        rss_dir.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "-c",
            str(Path(tmp, "pytest.ini")),
            "--rootdir",
            tmp,
            "test_suite.py",
        ]
        if mode != "check":
            cmd += ["--leak-mode", mode]
        env = dict(os.environ, BENCH_RSS_DIR=str(rss_dir))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800, check=False)
        wall = time.perf_counter() - t0
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", last)}
        rss = {p.stem: json.loads(p.read_text()) for p in rss_dir.glob("*.json")}
    return {"wall": wall, "counts": counts, "summary": last, "rss": rss, "exit": proc.returncode}


_SESSION_CONFTEST = """
import gc, json, os, sys
import psutil

_seen = [0]
_marks = {}


def pytest_runtest_logfinish(nodeid, location):
    _seen[0] += 1
    if _seen[0] in (50, int(os.environ["BENCH_LAST"])):
        gc.collect()
        _marks[_seen[0]] = (sys.getallocatedblocks(), psutil.Process().memory_info().rss)
    if _seen[0] == int(os.environ["BENCH_LAST"]):
        with open(os.environ["BENCH_OUT"], "w") as fh:
            json.dump({str(k): v for k, v in _marks.items()}, fh)
"""


def session_memory(n_tests: int, args: list[str]) -> dict[str, float]:
    """One pytest process running ``n_tests`` clean leak tests; blocks and RSS kept per test after test 50."""
    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        body = "".join(_CLEAN.format(i=i) for i in range(n_tests))
        Path(tmp, "test_suite.py").write_text(_TESTS.format(tests=body))
        Path(tmp, "conftest.py").write_text(_SESSION_CONFTEST)
        Path(tmp, "pytest.ini").write_text("[pytest]\nleak_attribution = off\n")
        out = Path(tmp, "marks.json")
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "no:randomly",
            "--rootdir",
            tmp,
            "test_suite.py",
            *[a.replace("{tmp}", tmp) for a in args],
        ]
        env = dict(os.environ, BENCH_OUT=str(out), BENCH_LAST=str(n_tests))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=3600, check=False)
        wall = time.perf_counter() - t0
        if not out.exists():
            raise SystemExit(f"session run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        marks = json.loads(out.read_text())
    (b0, r0), (b1, r1) = marks["50"], marks[str(n_tests)]
    n = n_tests - 50
    return {
        "wall": wall,
        "blocks_per_test": (b1 - b0) / n,
        "rss_per_test_kib": (r1 - r0) / n / 1024,
        "rss_growth_mib": (r1 - r0) / 2**20,
    }


_SESSION_RUNS = (
    ("leak checks, no report", []),
    ("leak checks, `--leak-report`", ["--leak-report={tmp}/report"]),
    ("same tests, `--leak-mode once`", ["--leak-mode", "once"]),
)


def session_table(n_tests: int) -> list[str]:
    """Part 3's lines for RESULTS.md."""
    rows = []
    for title, args in _SESSION_RUNS:
        r = session_memory(n_tests, args)
        print(f"session memory, {title}:", r, flush=True)
        rows.append(
            f"| {title} | {r['wall']:.0f} s | {r['blocks_per_test']:+.1f} | {r['rss_per_test_kib']:+.1f} KiB "
            f"| {r['rss_growth_mib']:+.1f} MiB |"
        )
    return [
        "",
        (
            f"The pytest process over a long session: {n_tests} clean `@pytest.mark.leak` tests in one process, "
            "growth after test 50 (target: at most ~2 KiB kept per leak test):"
        ),
        "",
        "| run | wall | pymalloc blocks per test | RSS per test | RSS growth |",
        "|---|---|---|---|---|",
        *rows,
    ]


def harness_memory(n_checks: int) -> dict[str, float]:
    """Run check() ``n_checks`` times on a clean step; blocks and RSS growth per check after the first 20."""
    import psutil

    import leakcheck

    def step() -> None:
        {i: str(i) for i in range(20)}

    proc = psutil.Process()
    flagged = 0
    base_blocks = base_rss = 0
    t0 = time.perf_counter()
    for i in range(1, n_checks + 1):
        res = leakcheck.check(step, attribution="off")
        flagged += res.leaking
        del res
        if i == 20:
            gc.collect()
            base_blocks, base_rss = sys.getallocatedblocks(), proc.memory_info().rss
    gc.collect()
    blocks, rss = sys.getallocatedblocks(), proc.memory_info().rss
    n = n_checks - 20
    return {
        "checks": n_checks,
        "seconds": time.perf_counter() - t0,
        "flagged": flagged,
        "blocks_start": base_blocks,
        "blocks_end": blocks,
        "blocks_per_check": (blocks - base_blocks) / n,
        "rss_start_mib": base_rss / 2**20,
        "rss_end_mib": rss / 2**20,
        "rss_per_check_kib": (rss - base_rss) / n / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Suite cost under -n 2 and harness memory over many checks")
    parser.add_argument("--tests", type=int, default=200, help="Leak tests in the generated suite (default 200)")
    parser.add_argument(
        "--checks", type=int, default=500, help="check() calls for the harness memory test (default 500)"
    )
    parser.add_argument("--session-tests", type=int, default=400, help="Leak tests in one pytest process (default 400)")
    parser.add_argument("--only-session", action="store_true", help="Run only the long-session memory part")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.only_session:
        print("\n".join(session_table(args.session_tests)))
        return 0
    facts = machine_facts()
    checked = suite(args.tests, "check")
    print("leak mode check:", checked, flush=True)
    plain = suite(args.tests, "once")
    print("leak mode once:", plain, flush=True)
    mem = harness_memory(args.checks)
    print("harness memory:", mem, flush=True)

    def rss_cells(r: dict[str, object]) -> str:
        rss = r["rss"]
        assert isinstance(rss, dict)
        return "; ".join(f"{w}: {v['start'] / 2**20:.0f} → {v['end'] / 2**20:.0f} MiB" for w, v in sorted(rss.items()))

    n_leaky = args.tests // 4
    lines = [
        "## Scale (scale)",
        "",
        f"Command: `{command_line()}`.",
        "",
        facts,
        "",
        (
            f"A generated suite of {args.tests} `@pytest.mark.leak` tests ({args.tests - n_leaky} "
            "clean: build a 20-entry "
            f"dict; {n_leaky} leaking one object per iteration), `pytest -n 2`, leakcheck defaults:"
        ),
        "",
        "| run | wall | pytest summary | worker RSS start → end |",
        "|---|---|---|---|",
        f"| leak checks (defaults) | {checked['wall']:.1f} s | {checked['summary']} | {rss_cells(checked)} |",
        (
            f"| same tests, `--leak-mode once` (no measuring) | {plain['wall']:.1f} s | {plain['summary']} | "
            f"{rss_cells(plain)} |"
        ),
        "",
        (
            f"Expected: {n_leaky} failed, {args.tests - n_leaky} passed. Per leak test: "
            f"{(checked['wall'] - plain['wall']) / args.tests * 2:.2f} s of a worker's time on average."
        ),
        "",
        (
            f'Harness memory: `check(step, attribution="off")` on a clean step, {mem["checks"]} times in one process '
            f"({mem['seconds']:.0f} s; flagged {mem['flagged']} time(s)):"
        ),
        "",
        "| measure | after check 20 | after the last check | growth per check |",
        "|---|---|---|---|",
        (
            f"| live pymalloc blocks | {mem['blocks_start']:.0f} | {mem['blocks_end']:.0f} | "
            f"{mem['blocks_per_check']:+.2f} |"
        ),
        (
            f"| RSS | {mem['rss_start_mib']:.1f} MiB | {mem['rss_end_mib']:.1f} MiB | "
            f"{mem['rss_per_check_kib']:+.2f} KiB |"
        ),
        *session_table(args.session_tests),
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        update_section("scale", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
