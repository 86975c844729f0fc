"""What the attribution window costs a leaking test: census, chains and captures, next to detection.

Each corpus case runs in its own child process (a leak must not leak into
the next case) as ``leakcheck.check(step, report=TMPDIR)``, the way a report
run does it: the window runs with its flamegraph, and, for memory leaks, the
census and the chains. The child times the runner's whole attribution step
(tracemalloc/memray windows, flamegraph, census, chains) and the rest of the
check (detection); this prints, over the leaking cases, the median and the
worst window in seconds and as a multiple of that case's detection run. For
clean cases it counts how many opened a window at all (a window on a clean
case is only opened when the verdict is inconclusive).

    python -m benchmarks.attribution_cost [--cases PATTERN] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .corpus import case_paths, load_case

_ROOT = Path(__file__).resolve().parent.parent


def _child(path: str) -> dict[str, Any]:
    """Run one case with a timed attribution step; the numbers as a dict."""
    import leakcheck
    from leakcheck import runner

    timed = {"attribution": 0.0, "retention": 0.0}
    original = runner._attribute

    async def attribute(run: Any, findings: Any) -> Any:
        began = time.perf_counter()
        try:
            return await original(run, findings)
        finally:
            timed["attribution"] += time.perf_counter() - began

    runner._attribute = attribute  # type: ignore[assignment]
    case = load_case(path)
    with tempfile.TemporaryDirectory(prefix="leakcheck-cost-") as report:
        result = leakcheck.check(case.step, setup=case.setup, teardown=case.teardown, name=case.name, report=report)
    attribution = result.attribution
    retention = attribution.retention if attribution is not None else None
    return {
        "case": case.name,
        "leaks": case.leaks,
        "leaking": result.leaking,
        "window": attribution is not None,
        "attribution_s": timed["attribution"],
        "retention_s": retention.seconds if retention is not None else 0.0,
        "detection_s": result.duration - timed["attribution"],
        "chains": len(retention.chains) if retention is not None else 0,
    }


def _run_case(path: Path, timeout: float) -> dict[str, Any] | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH", "")]))}
    cmd = [sys.executable, "-m", "benchmarks.attribution_cost", "--child", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=_ROOT, env=env, check=False)
    except subprocess.TimeoutExpired:
        print(f"  {path.stem}: timed out after {timeout:g} s", file=sys.stderr)
        return None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        print(f"  {path.stem}: failed (exit {proc.returncode}): {tail}", file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def main(argv: list[str] | None = None) -> int:
    """Run every case (or those matching ``--cases``) and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="*", help="fnmatch pattern(s) of case names, comma-separated")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child)), flush=True)
        # A leaking case may leave non-daemon threads (aiosqlite workers): do not wait for them.
        os._exit(0)
    rows = []
    for path in case_paths(args.cases):
        row = _run_case(path, args.timeout)
        if row is None:
            continue
        rows.append(row)
        ratio = row["attribution_s"] / row["detection_s"] if row["detection_s"] > 0 else float("nan")
        print(
            f"  {row['case']:<42} leaks={row['leaks']!s:<5} window={row['window']!s:<5} "
            f"attribution {row['attribution_s']:6.2f} s (census+chains {row['retention_s']:5.2f} s) "
            f"detection {row['detection_s']:6.2f} s  x{ratio:.2f}  chains={row['chains']}"
        )
    leaking = [r for r in rows if r["leaks"] and r["window"]]
    clean = [r for r in rows if not r["leaks"]]
    if leaking:
        seconds = [r["attribution_s"] for r in leaking]
        ratios = [r["attribution_s"] / r["detection_s"] for r in leaking if r["detection_s"] > 0]
        census = [r["retention_s"] for r in leaking]
        print(
            f"leaking cases with a window: {len(leaking)}; attribution window per test: "
            f"median {statistics.median(seconds):.2f} s (x{statistics.median(ratios):.2f} the detection run), "
            f"worst {max(seconds):.2f} s (x{max(ratios):.2f}); census+chains median {statistics.median(census):.2f} s, "
            f"worst {max(census):.2f} s"
        )
    print(
        f"clean cases: {len(clean)}; with a window: {sum(r['window'] for r in clean)}; "
        f"with census/chains: {sum(r['retention_s'] > 0 for r in clean)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
