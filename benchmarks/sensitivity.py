"""The smallest per-iteration leak each tool detects.

Synthetic cases, one fresh process per (tool, point): Python heap leaks of
one small object every 10, 5 or 2 iterations and of 1, 2, 4, 8 per
iteration, and of one ``bytes`` object with a 16 B .. 4 KiB payload per
iteration; native leaks of one ctypes ``malloc`` of 8 B .. 4 KiB per
iteration. Each kind has a control that leaks nothing. ``leakcheck (200)``
runs with its defaults except ``max_iterations=200``, so it must decide
within the 200 iterations the peers get (configured as in ``run.py``);
``leakcheck`` runs with its defaults, which measure a small but significant
slope longer (up to 20x the iterations) before deciding.

    python -m benchmarks.sensitivity [--tools leakcheck,tracemalloc] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .corpus import load_case
from .report import command_line, machine_facts, update_section
from .run import run_one
from .tools import MEMRAY_LOCATION_LIMIT, RSS_THRESHOLD, TOOLS, TRACEMALLOC_THRESHOLD, Outcome

ITERATIONS = 200

_PY_OBJECTS = '''
"""Synthetic: {n} small object(s) per iteration kept alive."""
LEAKS = {leaks}
RESOURCE = {resource!r}
DESCRIPTION = "sensitivity: {n} object() per iteration"
_kept = []


def step():
    for _ in range({n}):
        _kept.append(object())
'''

_PY_EVERY = '''
"""Synthetic: one small object kept every {n} iterations."""
LEAKS = {leaks}
RESOURCE = {resource!r}
DESCRIPTION = "sensitivity: one object() every {n} iterations"
_kept = []
_calls = [0]


def step():
    _calls[0] += 1
    if {n} and _calls[0] % {n} == 0:
        _kept.append(object())
'''

_PY_BYTES = '''
"""Synthetic: one bytes object with a {n}-byte payload per iteration kept alive."""
LEAKS = {leaks}
RESOURCE = {resource!r}
DESCRIPTION = "sensitivity: bytes({n}) per iteration"
_kept = []


def step():
    if {n}:
        _kept.append(bytes({n}))
'''

_NATIVE = '''
"""Synthetic: one ctypes malloc({n}) per iteration, never freed."""
import ctypes
import ctypes.util

LEAKS = {leaks}
RESOURCE = {resource!r}
DESCRIPTION = "sensitivity: malloc({n}) per iteration"
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def step():
    if {n}:
        p = _libc.malloc({n})
        _libc.memset(p, 1, {n})
'''

POINTS: list[tuple[str, str, int, str]] = (
    [("py object every", _PY_EVERY, n, "py_heap") for n in (0, 10, 5, 2)]
    + [("py objects", _PY_OBJECTS, n, "py_heap") for n in (0, 1, 2, 4, 8)]
    + [("py bytes payload", _PY_BYTES, n, "py_heap") for n in (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)]
    + [("native malloc", _NATIVE, n, "native_heap") for n in (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)]
)


#: Columns: (label, tool, options). leakcheck twice: held to the peers' 200 iterations, and its defaults.
COLUMNS: dict[str, tuple[str, dict[str, object]]] = {
    "leakcheck (200)": ("leakcheck", {"iterations": ITERATIONS, "max_iterations": ITERATIONS}),
    "leakcheck": ("leakcheck", {}),
    **{tool: (tool, {"iterations": ITERATIONS}) for tool in TOOLS if tool != "leakcheck"},
}


def _smallest(kind: str, results: dict[tuple[str, int], Outcome]) -> str:
    """The smallest size from which every larger size was flagged too (for "every", the largest period)."""
    sizes = sorted((n for (k, n) in results if k == kind and n > 0), reverse=kind == "py object every")
    smallest = None
    for n in reversed(sizes):
        if results[(kind, n)].flagged and not results[(kind, n)].error:
            smallest = n
        else:
            break
    return "not detected" if smallest is None else str(smallest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smallest per-iteration leak each tool detects in 200 iterations")
    parser.add_argument(
        "--tools", default=",".join(COLUMNS), help=f"Comma-separated columns (default all: {', '.join(COLUMNS)})"
    )
    parser.add_argument("--jobs", type=int, default=2, help="Subprocesses at once (at most 2; default 2)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    facts = machine_facts()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sens-"))
    t0 = time.perf_counter()
    try:
        cases = {}
        for kind, template, n, resource in POINTS:
            path = tmp / f"{'clean' if n == 0 else 'leak'}_{kind.replace(' ', '_')}_{n}.py"
            path.write_text(template.format(n=n, leaks=n > 0, resource=resource if n else None))
            cases[(kind, n)] = load_case(path)
        work = [(tool, key) for key in cases for tool in tools]
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
            outs = list(pool.map(lambda w: run_one(COLUMNS[w[0]][0], cases[w[1]], COLUMNS[w[0]][1]), work))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results: dict[str, dict[tuple[str, int], Outcome]] = {t: {} for t in tools}
    for (tool, key), out in zip(work, outs):
        results[tool][key] = out
    lines = ["| leak per iteration | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    for kind, _, n, _ in POINTS:
        cells = []
        for tool in tools:
            o = results[tool][(kind, n)]
            cell = "E" if o.error else ("flagged" if o.flagged else "·")
            if n == 0 and o.flagged:
                cell = "**flagged (control!)**"
            cells.append(cell)
        label = (
            (f"{kind}: {n}" if kind != "py object every" else f"py object every {n} iterations")
            if n
            else f"{kind}: none (control)"
        )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    summary = ["| smallest detected (and all above) | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    for kind, unit in (
        ("py object every", "iterations between objects"),
        ("py objects", "object(s)"),
        ("py bytes payload", "B payload"),
        ("native malloc", "B"),
    ):
        summary.append(f"| {kind} ({unit}) | " + " | ".join(_smallest(kind, results[t]) for t in tools) + " |")
    errors = [f"- {t} {k}: {o.error}" for t in tools for k, o in results[t].items() if o.error]
    text = "\n".join(summary) + "\n\n" + "\n".join(lines)
    print(text)
    print("\n".join(errors))
    elapsed = time.perf_counter() - t0
    if not args.no_write:
        body = "\n".join(
            [
                "## Sensitivity: the smallest leak per iteration each tool detects (sensitivity)",
                "",
                (
                    f"Command: `{command_line()}` — {elapsed:.0f} s. leakcheck (200): defaults with "
                    f"`max_iterations={ITERATIONS}`; leakcheck: defaults; tracemalloc flags > "
                    f"{TRACEMALLOC_THRESHOLD} B total, RSS > "
                    f'{RSS_THRESHOLD // 1024} KiB, memray `limit_leaks("{MEMRAY_LOCATION_LIMIT}")`, all over '
                    f"{ITERATIONS} iterations after a 20-iteration warm-up. Targets: one small object "
                    "every 10 iterations (Python heap), 8 B per iteration (native heap)."
                ),
                "",
                facts,
                "",
                text,
                "",
                "Errors:" if errors else "Errors: none",
                *errors,
            ]
        )
        update_section("sensitivity", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
