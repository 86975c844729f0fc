"""What detection costs: the bare loop vs the same iterations under leakcheck.

For a fast step (~1 ms of busy work that allocates a little) and a slow step
(~10 ms), in one process, interleaved and repeated: the wall time of the bare
loop (warm-up + measured iterations), of ``leakcheck.check(step,
attribution="off")`` (the default measures), of the default check (attribution
``auto``: on a clean step the window does not run) and of a check whose
attribution window is forced (``report=DIR``, as when a report is asked for).
The ratio compares each check with a bare loop of exactly the iterations that
check ran; the median over the repeats is reported.

    python -m benchmarks.overhead [--repeats 15] [--iterations 200]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from typing import Callable

import leakcheck
from leakcheck.probes import DEFAULT_PROBES, make_probes

from .report import command_line, machine_facts, update_section

_sink: list[int] = []
#: The measures issue 12 added: the ratio is also measured without them, in the same run.
NEW_MEASURES = ("mapped", "unclosed")


def _busy(target: float) -> Callable[[], None]:
    """A step of about ``target`` seconds: arithmetic plus a few short-lived allocations."""
    n = 1000
    while True:  # calibrate the loop count to the target
        t0 = time.perf_counter()
        _work(n)
        took = time.perf_counter() - t0
        if took > target / 4:
            break
        n *= 2
    n = max(1, int(n * target / took))
    # One timing of the first, cold loops made the "1 ms" step ~0.6 ms at times (a shorter step
    # pays more for each sample): rescale once from the median of several runs at this count.
    took = statistics.median(_timed(n) for _ in range(7))
    n = max(1, int(n * target / took))

    def step() -> None:
        _work(n)

    return step


def _timed(n: int) -> float:
    t0 = time.perf_counter()
    _work(n)
    return time.perf_counter() - t0


def _work(n: int) -> None:
    total = 0
    scratch: list[tuple[int, str]] = []
    for i in range(n):
        total += i * i % 7
        if i % 64 == 0:
            scratch.append((i, str(i)))
    _sink[:] = [total, len(scratch)]


def _bare(step: Callable[[], None], n: int) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def _checked(step: Callable[[], None], **options: object) -> tuple[float, int, bool]:
    gc.collect()
    t0 = time.perf_counter()
    res = leakcheck.check(step, **options)  # type: ignore[arg-type]
    return time.perf_counter() - t0, res.iterations + res.warmup, res.leaking


def measure(
    label: str, target: float, repeats: int, iterations: int, warmup: int, window_repeats: int = 1
) -> list[str]:
    step = _busy(target)
    per = statistics.median(_bare(step, 1) for _ in range(20))
    variants = {
        "measures only (attribution off)": {"attribution": "off"},
        "measures only, without mapped and unclosed": {
            "attribution": "off",
            "probes": tuple(p for p in DEFAULT_PROBES if p not in NEW_MEASURES),
        },
        "defaults (attribution auto)": {},
        # With a report, an explicit attribution mode runs the window even on a clean step.
        "attribution window forced (report=DIR)": {"report": None, "attribution": "both"},
    }
    ratios: dict[str, list[float]] = {k: [] for k in variants}
    walls: dict[str, list[float]] = {k: [] for k in variants}
    bares: list[float] = []
    flagged = 0
    for r in range(repeats):
        for name, opts in variants.items():
            if "report" in opts and r >= window_repeats:
                continue  # the forced window costs ~100x: measured fewer times
            kwargs = dict(opts, iterations=iterations, warmup=warmup)
            with tempfile.TemporaryDirectory(prefix="bench-overhead-") as report:
                if "report" in kwargs:
                    kwargs["report"] = report
                wall, ran, leaking = _checked(step, **kwargs)
            bare = _bare(step, ran)  # interleaved: the bare loop of the same iterations right after
            flagged += leaking
            ratios[name].append(wall / bare)
            walls[name].append(wall)
            bares.append(bare)
    rows = [
        f"| {label} | {per * 1e3:.2f} ms | {name} | {statistics.median(walls[name]):.2f} s | "
        f"{statistics.median(ratios[name]):.2f}x | {min(ratios[name]):.2f}x – {max(ratios[name]):.2f}x |"
        for name in variants
    ]
    if flagged:
        rows.append(f"| {label} | | (clean step flagged {flagged} time(s)!) | | | |")
    return rows


def probe_costs(reads: int = 2000) -> list[str]:
    """Rows of a table: what one reading of each default measure costs (median of ``reads``)."""
    rows = []
    for probe in make_probes(DEFAULT_PROBES):
        reason = probe.unavailable()
        if reason:
            rows.append(f"| {probe.name} | unavailable here: {reason} |")
            continue
        times = []
        for _ in range(reads):
            t0 = time.perf_counter()
            probe.read()
            times.append(time.perf_counter() - t0)
        new = " (new in issue 12)" if probe.name in NEW_MEASURES else ""
        rows.append(f"| {probe.name}{new} | {statistics.median(times) * 1e6:.1f} µs |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wall-time cost of leakcheck over the bare loop")
    parser.add_argument(
        # A clean 1 ms check takes ~0.2 s: five repeats left the median at the mercy of the machine.
        "--repeats",
        type=int,
        default=15,
        help="Interleaved repeats; the median is reported (default 15)",
    )
    parser.add_argument("--iterations", type=int, default=200, help="Measured iterations (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="Warm-up iterations (default 20)")
    parser.add_argument("--window-repeats", type=int, default=1, help="Repeats of the forced-window run (default 1)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    facts = machine_facts()
    rows = []
    for label, target in (("fast step", 0.001), ("slow step", 0.010)):
        rows += measure(label, target, args.repeats, args.iterations, args.warmup, args.window_repeats)
        print("\n".join(rows[-4:]), flush=True)
    costs = "\n".join(["| measure | one reading (median) |", "|---|---|", *probe_costs()])
    table = "\n".join(
        [
            "| step | one iteration | leakcheck run | wall (median) | ratio to bare loop (median) | range |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    print(costs)
    if not args.no_write:
        body = "\n".join(
            [
                "## Overhead: bare loop vs leakcheck (overhead)",
                "",
                (
                    f"Command: `{command_line()}` — {args.repeats} interleaved repeats, {args.warmup} warm-up + "
                    f"{args.iterations} measured iterations; each ratio divides a check's wall time by a bare loop of "
                    "the same number of iterations run right after it in the same process. Target: <= 1.3x for a 1 ms "
                    "step with the measures only. The forced attribution window is measured "
                    f"{args.window_repeats} time(s) only (it costs ~100x)."
                ),
                "",
                facts,
                "",
                table,
                "",
                "One reading of each default measure (a sample reads them all, after a `gc.collect()`):",
                "",
                costs,
            ]
        )
        update_section("overhead", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
