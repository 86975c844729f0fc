"""Each fault of scenarios/things3 makes its leak suite fail, naming the right measure.

For every fault in ``scenarios/things3/faults.py`` the matching scenario test
runs in a child pytest with ``THINGS3_FAULTS`` set, over a small database; it
must fail (exit status 1) and its report must name the measure that grew
("LEAK File descriptors: ...") and, where attribution can see it, the
line in scenarios/things3 that leaks. The same tests pass with no fault.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Fault:
    name: str  #: the fault switched on through $THINGS3_FAULTS
    nodeid: str  #: the scenario test that must catch it
    measures: tuple[str, ...]  #: measure titles that must each be reported as LEAK
    site: str = ""  #: text the report must contain: the leaking line, or a handle left behind
    flags: tuple[str, ...] = ()  #: extra pytest flags for this run


#: fault → scenario test → what its failure must name.
FAULTS = (
    # memray 1.20 once crashed here in a way leakcheck's GIL guard does not
    # explain (its stack tracker read a freed frame, with ~600 leaked threads;
    # 30 guarded runs since were clean); tracemalloc alone is enough to name the pool.
    Fault(
        "lost_connection_on_error",
        "scenarios/test_pool_leaks.py::test_exception_inside_checkout",
        ("File descriptors", "Python threads"),
        "",
        ("--leak-attribution=tracemalloc",),
    ),
    Fault(
        "unclosed_cursor",
        "scenarios/test_query_leaks.py::test_query[areas]",
        ("Python heap (live blocks)",),
        "scenarios/things3/queries.py",
    ),
    Fault(
        "unbounded_cache",
        "scenarios/test_query_leaks.py::test_cache_kept_across_iterations",
        ("Python heap (live blocks)",),
        "scenarios/things3/cache.py",
    ),
    Fault(
        "temp_db_not_deleted",
        "scenarios/test_cleanup_leaks.py::test_temp_database_created_and_deleted",
        ("Files left on disk",),
        "main.sqlite",
    ),
    Fault(
        "close_forgets_idle",
        "scenarios/test_cleanup_leaks.py::test_pool_opened_and_closed",
        # The forgotten connections are closed by the garbage collector: the unclosed-resources measure sees them.
        ("Unclosed resources (closed by the GC)",),
        "",
    ),
    Fault(
        "warmer_never_stopped",
        "scenarios/test_query_leaks.py::test_cache_warming_started_and_closed",
        ("asyncio tasks",),
        "things3-cache-warmer",
    ),
    Fault(
        "dropped_poll_task",
        "scenarios/test_cleanup_leaks.py::test_watch_started_and_pool_closed",
        ("asyncio tasks",),
        "things3-watch",
    ),
)

#: Short runs: a planted leak grows by at least one handle or block per iteration.
#: (A test's own marker keywords win over these flags.) The clean run keeps the
#: suites' own iteration counts, which are chosen to see sqlite3's cursor
#: sawtooth come back down.
SHORT = ("--leak-iterations=60", "--leak-warmup=5", "--leak-attribution-iterations=20")

#: The child runs pytest and then leaves with os._exit: connections a fault
#: leaks keep aiosqlite's (non-daemon) worker threads waiting for ever, and a
#: normal interpreter exit would wait for them.
CHILD = (
    "import os, sys, pytest; code = pytest.main(sys.argv[1:]);"
    " sys.stdout.flush(); sys.stderr.flush(); os._exit(int(code))"
)


def run_scenarios(
    tmp_path: Path, *nodeids: str, fault: str = "", flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "THINGS3_FAULTS": fault,
        "THINGS3_TASKS": "2000",
        # Databases a fault leaves behind land here, not in the real temp dir.
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-m",
            "leak",
            *flags,
            "-q",
            "-rN",
            *nodeids,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_every_fault_is_in_the_table() -> None:
    from scenarios.things3.faults import CATALOGUE

    assert sorted(f.name for f in FAULTS) == sorted(CATALOGUE)


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_fails_its_scenario_naming_the_measure(fault: Fault, tmp_path: Path) -> None:
    result = run_scenarios(tmp_path, fault.nodeid, fault=fault.name, flags=SHORT + fault.flags)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed" in output, output
    for measure in fault.measures:
        assert f"LEAK {measure}: unbounded" in output, output
    assert fault.site in output, output


@pytest.mark.slow
def test_scenarios_pass_without_faults(tmp_path: Path) -> None:
    nodeids = sorted({f.nodeid for f in FAULTS})
    result = run_scenarios(tmp_path, *nodeids)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{len(nodeids)} passed" in output, output
