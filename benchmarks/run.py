"""Accuracy and cost of leakcheck and its peers over the corpus in ``benchmarks/cases``.

Every (tool, case, repeat) runs in a fresh subprocess with its own ``TMPDIR``.
Per tool it prints true/false positives and negatives, errors, the total wall
time and the wall-time ratio to the bare loop (same iterations, same process),
and it writes the tables into the ``run`` section of ``benchmarks/RESULTS.md``.

    python -m benchmarks.run                       # every case, every tool, once
    python -m benchmarks.run --repeat 10 --tools leakcheck
    python -m benchmarks.run --cases 'clean_*,leak_fd*' --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from leakcheck import Settings

from .corpus import Case, discover
from .report import command_line, machine_facts, update_section
from .tools import (
    ITERATIONS,
    MEMRAY_LOCATION_LIMIT,
    RSS_THRESHOLD,
    TOOLS,
    TRACEMALLOC_THRESHOLD,
    WARMUP,
    Outcome,
)

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 600


def run_one(tool: str, case: Case, options: dict[str, object] | None = None) -> Outcome:
    """Run ``tool`` on ``case`` in a fresh subprocess with a private temp dir."""
    tmp = tempfile.mkdtemp(prefix="bench-tmp-")
    env = dict(os.environ, TMPDIR=tmp, PYTHONPATH=str(REPO))
    env.pop("PYTHONMALLOC", None)
    cmd = [sys.executable, "-m", "benchmarks.tools", tool, str(case.path), "--options", json.dumps(options or {})]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(tool=tool, case=case.name, error=f"timed out after {TIMEOUT} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-OUTCOME "):
            data = json.loads(line[len("BENCH-OUTCOME ") :])
            return Outcome(**data)
    tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
    return Outcome(tool=tool, case=case.name, error=f"worker exit {proc.returncode}: {tail[-600:]}")


def summarise(cases: list[Case], outcomes: list[Outcome], tools: list[str]) -> tuple[str, list[str]]:
    """The Markdown tables and the list of leakcheck misses / false positives."""
    truth = {c.name: c for c in cases}
    by_tool: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_tool[o.tool].append(o)
    lines = [
        (
            "| tool | runs | TP | FN | TN | FP | errors | recall | FP rate | tool wall (s) | bare loop "
            "(s) | ratio (sum) | ratio (median case) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in tools:
        rows = by_tool.get(tool, [])
        ok = [o for o in rows if not o.error]
        tp = sum(o.flagged and truth[o.case].leaks for o in ok)
        fn = sum(not o.flagged and truth[o.case].leaks for o in ok)
        tn = sum(not o.flagged and not truth[o.case].leaks for o in ok)
        fp = sum(o.flagged and not truth[o.case].leaks for o in ok)
        wall = sum(o.wall for o in ok)
        bare = sum(o.bare for o in ok)
        ratios = [o.wall / o.bare for o in ok if o.bare > 0]
        recall = f"{tp / (tp + fn):.0%}" if tp + fn else "-"
        fpr = f"{fp / (fp + tn):.0%}" if fp + tn else "-"
        lines.append(
            f"| {tool} | {len(rows)} | {tp} | {fn} | {tn} | {fp} | {len(rows) - len(ok)} | {recall} | {fpr} | "
            f"{wall:.1f} | {bare:.2f} | {wall / bare if bare else float('nan'):.0f}x | "
            f"{statistics.median(ratios) if ratios else float('nan'):.0f}x |"
        )
    # per-case matrix: how many of the repeats flagged the case
    repeats: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        repeats[(o.case, o.tool)].append(o)
    matrix = [
        "",
        "Per case: flagged / runs (`E` = errors; **bold** = wrong answer in at least one run).",
        "",
        "| case | truth | resource | " + " | ".join(tools) + " |",
        "|---|---|---|" + "---|" * len(tools),
    ]
    problems: list[str] = []
    for case in cases:
        cells = []
        for tool in tools:
            runs = repeats.get((case.name, tool), [])
            if not runs:
                cells.append("")
                continue
            flagged = sum(o.flagged for o in runs if not o.error)
            errors = sum(bool(o.error) for o in runs)
            wrong = any((o.flagged != case.leaks) and not o.error for o in runs)
            cell = f"{flagged}/{len(runs)}" + (f" {errors}E" if errors else "")
            cells.append(f"**{cell}**" if wrong else cell)
            if tool == "leakcheck":
                for o in runs:
                    if o.error:
                        problems.append(f"- `{case.name}`: ERROR {o.error}")
                    elif o.flagged != case.leaks:
                        kind = "false positive" if o.flagged else "missed leak"
                        extra = o.extra or {}
                        problems.append(
                            f"- `{case.name}` ({kind}): flagged={o.flagged} detail=`{o.detail}` "
                            f"iterations={extra.get('iterations')} growth={extra.get('growth')}"
                        )
        truth_cell = "leak" if case.leaks else "clean"
        matrix.append(f"| `{case.name}` | {truth_cell} | {case.resource or ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines + matrix), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Accuracy and cost of leakcheck vs its peers over the corpus")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of every (tool, case) pair (default 1)")
    parser.add_argument("--cases", default="*", help="Comma-separated fnmatch patterns of case names")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"Comma-separated tools (default {','.join(TOOLS)})")
    parser.add_argument("--jobs", type=int, default=2, help="Subprocesses at once (at most 2; default 2)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    parser.add_argument("--section", default="run", help="RESULTS.md section to write (default run)")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in tools:
        if t not in TOOLS:
            parser.error(f"unknown tool {t!r}; known: {', '.join(TOOLS)}")
    jobs = max(1, min(args.jobs, 2))
    cases = discover(args.cases)
    if not cases:
        parser.error(f"no case matches {args.cases!r}")
    work = [(tool, case) for _ in range(args.repeat) for case in cases for tool in tools]
    print(
        f"{len(cases)} cases x {len(tools)} tools x {args.repeat} repeats = {len(work)} runs, {jobs} at a time",
        flush=True,
    )
    facts = machine_facts()
    t0 = time.perf_counter()
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for i, out in enumerate(pool.map(lambda w: run_one(*w), work), 1):
            outcomes.append(out)
            truth = next(c for c in cases if c.name == out.case).leaks
            mark = "ERROR" if out.error else ("ok" if out.flagged == truth else "WRONG")
            print(
                f"[{i}/{len(work)}] {out.tool:13} {out.case:40} flagged={out.flagged!s:5} {mark:5} "
                f"{out.wall:6.2f}s bare {out.bare:6.3f}s {out.error or out.detail}"[:240],
                flush=True,
            )
    elapsed = time.perf_counter() - t0
    table, problems = summarise(cases, outcomes, tools)
    print()
    print(table)
    if problems:
        print("\nleakcheck misses / false positives / errors:")
        print("\n".join(problems))
    print(f"\ntotal {elapsed:.0f} s")
    if not args.no_write:
        body = [
            f"## Accuracy and cost over the corpus ({args.section})",
            "",
            (
                f"Command: `{command_line()}` — {len(cases)} cases, {len(tools)} tools, {args.repeat} repeat(s), "
                f"{jobs} job(s), {elapsed:.0f} s in all."
            ),
            "",
            facts,
            "",
            (
                f"Each tool: setup, {WARMUP} warm-up iterations, {ITERATIONS} measured iterations, teardown, in a "
                "fresh process. leakcheck runs with its defaults (it may extend to 5x the iterations when unsure "
                f"and follows heap growth past {2 * Settings().fill_iterations} iterations for up to "
                f"{Settings().extend_time:g} s of step time, at most 20x; it "
                "runs an attribution window when it finds growth, and waits up to 1 s for handles to be released). "
                f"Peers: tracemalloc snapshot diff flags > {TRACEMALLOC_THRESHOLD} B total growth; RSS diff flags "
                f'> {RSS_THRESHOLD // 1024} KiB; pytest-memray `limit_leaks("{MEMRAY_LOCATION_LIMIT}")` per '
                "location (`--memray`; `memray-malloc` adds `--native` and `PYTHONMALLOC=malloc`). Ratios: the tool's "
                "wall time over the bare loop (setup + the same warm-up and iterations + teardown, no tool) timed in "
                "the same process right after; for memray the test's whole setup/call/teardown inside pytest."
            ),
            "",
            table,
            "",
            "leakcheck's misses, false positives and errors in this run:",
            "",
            "\n".join(problems) if problems else "- none",
        ]
        update_section(args.section, "\n".join(body))
        print(f"wrote section {args.section!r} of benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
