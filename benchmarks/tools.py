"""The detectors compared, each run on one case inside one (fresh) process.

Every tool gets the same work: the case's setup, ``WARMUP`` iterations that
are never judged, ``ITERATIONS`` measured iterations, teardown. Each returns
an :class:`Outcome`: did it flag the case, how long it took, and the wall time
of the bare loop (setup + the same iterations + teardown, no tool) measured
in the same process right after it.

The peers are set up the way a careful user would set them up:

- ``tracemalloc``: ``tracemalloc.start()``, warm-up, ``gc.collect()``,
  snapshot, the iterations, ``gc.collect()``, snapshot; flagged when the
  traced total grew more than ``TRACEMALLOC_THRESHOLD`` bytes (importlib and
  tracemalloc's own frames filtered out).
- ``rss``: psutil RSS before and after the iterations (after the warm-up and
  a ``gc.collect()``); flagged when it grew more than ``RSS_THRESHOLD``.
- ``memray`` / ``memray-malloc``: a generated pytest file whose fixture runs
  setup + warm-up (outside memray's tracking) and whose test, marked
  ``@pytest.mark.limit_leaks(MEMRAY_LOCATION_LIMIT, filter_fn=...)``, loops
  the step; run with ``--memray`` (and, for ``memray-malloc``, ``--native``
  and ``PYTHONMALLOC=malloc`` as pytest-memray's docs advise for leaks).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .corpus import Case, Driver

__all__ = ["ITERATIONS", "TOOLS", "WARMUP", "Outcome", "run_tool"]

ITERATIONS = 200  # leakcheck's default measured iterations
WARMUP = 20  # leakcheck's default warm-up
TRACEMALLOC_THRESHOLD = 4096  # bytes over ITERATIONS: ~20 B/iteration
RSS_THRESHOLD = 1024 * 1024  # bytes over ITERATIONS: RSS is page-granular and noisy
MEMRAY_LOCATION_LIMIT = "1KB"  # per allocation location, over ITERATIONS: ~5 B/iteration

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("leakcheck", "memray", "memray-malloc", "tracemalloc", "rss")


@dataclass
class Outcome:
    """What one tool said about one case."""

    tool: str
    case: str
    flagged: bool = False
    error: str = ""
    wall: float = 0.0  #: seconds the tool took to reach its verdict (setup to teardown)
    bare: float = 0.0  #: seconds of the bare loop (setup, warm-up + iterations, teardown)
    detail: str = ""  #: what the tool pointed at
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def bare_loop(case: Case, iterations: int = ITERATIONS, warmup: int = WARMUP) -> float:
    """Wall seconds of setup + warm-up + iterations + teardown with no tool."""
    gc.collect()
    t0 = time.perf_counter()
    d = Driver(case)
    d.open()
    d.run(warmup)
    d.run(iterations)
    d.close()
    return time.perf_counter() - t0


def _leakcheck(case: Case, out: Outcome, options: dict[str, object]) -> None:
    import leakcheck

    t0 = time.perf_counter()
    res = leakcheck.check(case.step, setup=case.setup, teardown=case.teardown, name=case.name, **options)
    out.wall = time.perf_counter() - t0
    out.flagged = res.leaking
    kinds = sorted({h.kind for h in res.handles})
    out.detail = ", ".join([f.probe for f in res.leaks] + [f"left:{k}" for k in kinds])
    out.extra = {
        "iterations": res.iterations,
        "verdicts": {f.probe: f.verdict.value for f in res.findings},
        "growth": {f.probe: round(f.growth_per_iteration, 3) for f in res.findings},
        "summary": str(res) if res.leaking else "",
    }


def _tracemalloc(case: Case, out: Outcome, options: dict[str, object]) -> None:
    import tracemalloc

    iterations = int(options.get("iterations", ITERATIONS))  # type: ignore[call-overload]
    threshold = float(options.get("threshold", TRACEMALLOC_THRESHOLD))  # type: ignore[arg-type]
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    t0 = time.perf_counter()
    tracemalloc.start()
    d = Driver(case)
    d.open()
    d.run(WARMUP)
    gc.collect()
    before = tracemalloc.take_snapshot().filter_traces(filters)
    d.run(iterations)
    gc.collect()
    after = tracemalloc.take_snapshot().filter_traces(filters)
    stats = after.compare_to(before, "lineno")
    growth = sum(s.size_diff for s in stats)
    d.close()
    tracemalloc.stop()
    out.wall = time.perf_counter() - t0
    out.flagged = growth > threshold
    top = max(stats, key=lambda s: s.size_diff, default=None)
    out.detail = f"{growth / iterations:+.0f} B/iter" + (f" top {top.traceback[0]}" if top and out.flagged else "")
    out.extra = {"growth_bytes": growth}


def _rss(case: Case, out: Outcome, options: dict[str, object]) -> None:
    import psutil

    iterations = int(options.get("iterations", ITERATIONS))  # type: ignore[call-overload]
    threshold = float(options.get("threshold", RSS_THRESHOLD))  # type: ignore[arg-type]
    proc = psutil.Process()
    t0 = time.perf_counter()
    d = Driver(case)
    d.open()
    d.run(WARMUP)
    gc.collect()
    before = proc.memory_info().rss
    d.run(iterations)
    gc.collect()
    growth = proc.memory_info().rss - before
    d.close()
    out.wall = time.perf_counter() - t0
    out.flagged = growth > threshold
    out.detail = f"{growth / iterations:+.0f} B/iter"
    out.extra = {"growth_bytes": growth}


_PYTEST_FILE = '''
import sys
sys.path.insert(0, {repo!r})
import pytest
from benchmarks.corpus import Driver, load_case

CASE = load_case({path!r})
INTERNAL = ("_pytest", "pluggy", "pytest_memray", "/memray/", "importlib")


def keep(stack):
    """Report a leak unless every frame of its stack is pytest's or memray's own."""
    return any(not any(part in f.filename for part in INTERNAL) for f in stack.frames)


@pytest.fixture
def driver():
    d = Driver(CASE)
    d.open()
    d.run({warmup})
    yield d
    d.close()


@pytest.mark.limit_leaks({limit!r}, filter_fn=keep)
def test_case(driver):
    driver.run({iterations})
'''

_CONFTEST = """
import json, os, time
import pytest

TIMES = {{}}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = time.perf_counter()
    yield
    TIMES[item.name] = time.perf_counter() - t0


def pytest_runtest_logreport(report):
    if report.when == "call" or report.failed:
        TIMES.setdefault("reports", []).append([report.when, report.outcome, report.longreprtext[-3000:]])


def pytest_sessionfinish(session, exitstatus):
    from benchmarks.corpus import load_case
    from benchmarks.tools import bare_loop
    TIMES["bare"] = bare_loop(load_case({path!r}), {iterations}, {warmup})
    TIMES["exitstatus"] = int(exitstatus)
    with open(os.environ["BENCH_TIMES"], "w") as fh:
        json.dump(TIMES, fh)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # threads a leaky case left (aiosqlite's are not daemons) must not keep pytest alive
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(TIMES.get("exitstatus", 3))
"""


def _memray(case: Case, out: Outcome, options: dict[str, object], *, malloc: bool) -> None:
    iterations = int(options.get("iterations", ITERATIONS))  # type: ignore[call-overload]
    limit = str(options.get("limit", MEMRAY_LOCATION_LIMIT))
    with tempfile.TemporaryDirectory(prefix="bench-memray-") as tmp:
        fmt = {"repo": str(REPO), "path": str(case.path), "warmup": WARMUP, "iterations": iterations, "limit": limit}
        Path(tmp, f"test_{case.name}.py").write_text(_PYTEST_FILE.format(**fmt))
        Path(tmp, "conftest.py").write_text(_CONFTEST.format(**fmt))
        Path(tmp, "pytest.ini").write_text("[pytest]\n")
        times_file = Path(tmp, "times.json")
        env = dict(os.environ, BENCH_TIMES=str(times_file), PYTHONPATH=str(REPO))
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:leakcheck",
            "-c",
            str(Path(tmp, "pytest.ini")),
            "--rootdir",
            tmp,
            "--memray",
        ]
        if malloc:
            env["PYTHONMALLOC"] = "malloc"
            cmd.append("--native")
        cmd.append(str(Path(tmp, f"test_{case.name}.py")))
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600, check=False)
        times = json.loads(times_file.read_text()) if times_file.exists() else {}
    reports = times.get("reports", [])
    call = [r for r in reports if r[0] == "call"]
    out.wall = float(times.get("test_case", 0.0))
    out.bare = float(times.get("bare", 0.0))
    out.extra = {"exit": proc.returncode}
    if proc.returncode == 0:
        out.flagged = False
    elif proc.returncode == 1 and call and call[0][1] == "failed" and "leaked" in call[0][2].lower():
        out.flagged = True
        head = [ln for ln in call[0][2].splitlines() if "leaked" in ln.lower()]
        out.detail = head[0].strip()[:160] if head else ""
    else:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        internal = [ln for ln in lines if ln.startswith("INTERNALERROR>")]
        tail = (internal or lines)[-4:]
        out.error = f"pytest exit {proc.returncode}: " + " | ".join(t.strip() for t in tail)[-500:]


RUNNERS: dict[str, Callable[[Case, Outcome, dict[str, object]], None]] = {
    "leakcheck": _leakcheck,
    "tracemalloc": _tracemalloc,
    "rss": _rss,
    "memray": lambda c, o, opt: _memray(c, o, opt, malloc=False),
    "memray-malloc": lambda c, o, opt: _memray(c, o, opt, malloc=True),
}


def run_tool(tool: str, case: Case, options: dict[str, object] | None = None) -> Outcome:
    """Run ``tool`` on ``case`` in this process and time the bare loop after it."""
    out = Outcome(tool=tool, case=case.name)
    options = dict(options or {})
    try:
        RUNNERS[tool](case, out, options)
    except Exception as exc:  # noqa: BLE001 - any failure of a tool is recorded as its error
        out.error = f"{type(exc).__name__}: {exc}"[:600]
        cause = exc.__cause__
        if cause is not None:
            out.error += f" (cause: {type(cause).__name__}: {cause})"[:300]
        return out
    if not out.bare:
        try:
            out.bare = bare_loop(case, int(options.get("iterations", ITERATIONS)))  # type: ignore[call-overload]
        except Exception as exc:  # noqa: BLE001 - a leaky case may have exhausted something by now
            out.extra["bare_error"] = f"{type(exc).__name__}: {exc}"
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.tools TOOL CASE_PATH [JSON_OPTIONS]``: print one Outcome as JSON."""
    import argparse

    from .corpus import load_case

    parser = argparse.ArgumentParser(description="Run one tool on one case (used by run.py)")
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("case", help="Path of the case module")
    parser.add_argument("--options", default="{}", help="JSON object of tool options")
    args = parser.parse_args(argv)
    out = run_tool(args.tool, load_case(args.case), json.loads(args.options))
    print("BENCH-OUTCOME " + out.to_json(), flush=True)
    _reap_children()
    sys.stdout.flush()
    os._exit(0)  # leaked non-daemon threads must not keep this process alive


def _reap_children() -> None:
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            child.kill()
    except Exception as exc:  # noqa: BLE001 - best effort: helper processes a leaky case left
        print(f"could not reap children: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
