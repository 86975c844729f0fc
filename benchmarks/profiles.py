"""What each profile costs: seconds per clean test and per leaking test, and what it catches.

Every (profile, case) runs in a fresh process through ``benchmarks.tools``
(leakcheck, defaults but the profile, attribution off so only the verdict's
cost is measured). The cases: a few clean and leaking corpus cases, and a
leak that starts after 1,000 calls, which only the nightly profile reaches.

    python -m benchmarks.profiles [--no-write] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .corpus import CASES_DIR, load_case
from .report import command_line, machine_facts, update_section
from .run import run_one

PROFILES = ("default", "nightly")
CASES = (
    "clean_lazy_init",
    "clean_lru_cache_plateau",
    "clean_sqlite_connect_close",
    "clean_sawtooth",
    "leak_py_small_objects",
    "leak_native_malloc",
    "leak_fd_open_file",
    "leak_native_error_path_every_100",
)

_LATE = '''
"""A pool that is fine for 1,000 calls, then keeps a record per call once exhausted."""
LEAKS = True
RESOURCE = "py_heap"
DESCRIPTION = "flat for 1,000 calls, then 1.5 blocks per call"
_calls = [0]
_kept = []


def step():
    _calls[0] += 1
    if _calls[0] > 1000:
        _kept.append((_calls[0], object()))
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost and reach of each leakcheck profile")
    parser.add_argument("--jobs", type=int, default=2, help="Subprocesses at once (at most 2; default 2)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-profiles-"))
    t0 = time.perf_counter()
    try:
        late = tmp / "leak_after_1000_flat_calls.py"
        late.write_text(_LATE)
        cases = [load_case(CASES_DIR / f"{name}.py") for name in CASES] + [load_case(late)]
        work = [(profile, case) for case in cases for profile in PROFILES]
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
            outs = list(pool.map(lambda w: run_one("leakcheck", w[1], {"profile": w[0], "attribution": "off"}), work))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by = {(p, c.name): o for (p, c), o in zip(work, outs)}
    lines = [
        "| case | truth | " + " | ".join(f"{p}: flagged, s" for p in PROFILES) + " |",
        "|---|---|" + "---|" * len(PROFILES),
    ]
    for case in cases:
        cells = []
        for p in PROFILES:
            o = by[(p, case.name)]
            right = o.flagged == case.leaks and not o.error
            cell = "E" if o.error else f"{'flagged' if o.flagged else '·'}, {o.wall:.2f}"
            cells.append(cell if right else f"**{cell}**")
        lines.append(f"| `{case.name}` | {'leak' if case.leaks else 'clean'} | " + " | ".join(cells) + " |")
    summary = [
        "| profile | median s per clean test | median s per leaking test | leaks caught | clean flagged |",
        "|---|---|---|---|---|",
    ]
    for p in PROFILES:
        ok = [(c, by[(p, c.name)]) for c in cases if not by[(p, c.name)].error]
        clean = [o.wall for c, o in ok if not c.leaks]
        leaky = [o.wall for c, o in ok if c.leaks]
        caught = sum(o.flagged for c, o in ok if c.leaks)
        false = sum(o.flagged for c, o in ok if not c.leaks)
        summary.append(
            f"| {p} | {statistics.median(clean):.2f} | {statistics.median(leaky):.2f} | "
            f"{caught} / {sum(c.leaks for c in cases)} | {false} / {sum(not c.leaks for c in cases)} |"
        )
    errors = [f"- {p} {c}: {o.error}" for (p, c), o in by.items() if o.error]
    text = "\n".join(summary) + "\n\n" + "\n".join(lines)
    print(text)
    print("\n".join(errors))
    if not args.no_write:
        body = "\n".join(
            [
                "## What each profile costs (profiles)",
                "",
                f"Command: `{command_line()}` — {time.perf_counter() - t0:.0f} s.",
                "",
                machine_facts(),
                "",
                (
                    "leakcheck with its defaults but the profile, attribution off (the verdict's cost alone), "
                    "one fresh process per (profile, case); seconds are the check's wall time."
                ),
                "",
                text,
                "",
                "Errors:" if errors else "Errors: none",
                *errors,
            ]
        )
        update_section("profiles", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
