"""``--leak-flamegraphs``: a session's report renders flamegraphs for its worst leaking tests only (pytester)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leakcheck.attribution import CAPTURE_NAME, FLAMEGRAPH_NAME, memray_unavailable_reason
from leakcheck.report import capture_dir_for
from leakcheck.suite import FlamegraphQuota

# sqlite connections leak native memory that memray sees (a bytearray's buffer counts as Python's).
SUITE = """
import sqlite3

import pytest

KEEP = []


@pytest.mark.leak(iterations=60, max_iterations=120)
def test_leaks_a_lot():
    KEEP.extend(sqlite3.connect(":memory:") for _ in range(8))


@pytest.mark.leak(iterations=60, max_iterations=120)
def test_leaks_a_little():
    KEEP.append(sqlite3.connect(":memory:"))


@pytest.mark.leak(iterations=60, max_iterations=120)
def test_clean():
    sqlite3.connect(":memory:").close()
"""
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

needs_memray = pytest.mark.skipif(memray_unavailable_reason() is not None, reason="memray is not available here")


@pytest.mark.parametrize("value", ["many", "-3"])
def test_bad_flamegraph_count_is_a_one_line_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest(f"--leak-flamegraphs={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--leak-flamegraphs={value!r}*expected a number of flamegraphs >= 0, or 'all'*"])
    assert "Traceback" not in result.stderr.str()


def test_bad_ini_flamegraph_count_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "leak_flamegraphs = lots\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini leak_flamegraphs='lots'*"])


def _run_with_one_flamegraph(pytester: pytest.Pytester, **files: str) -> tuple[pytest.RunResult, Any, Path]:
    """Run ``files`` with a report and ``--leak-flamegraphs=1``: the result, results.json and the report folder."""
    pytester.makeini(INI)
    pytester.makepyfile(**files)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(f"--leak-report={report}", "--leak-flamegraphs=1", "-p", "no:randomly")
    return result, json.loads((report / "results.json").read_text(encoding="utf-8")), report


@pytest.mark.slow
@needs_memray
def test_the_worst_leaking_test_alone_gets_a_flamegraph(pytester: pytest.Pytester) -> None:
    result, data, report = _run_with_one_flamegraph(pytester, test_flames=SUITE)
    result.assert_outcomes(passed=1, failed=2)
    by_name = {t["id"].split("::")[1]: t for t in data["tests"]}
    assert by_name["test_leaks_a_lot"]["result"]["attribution"]["flamegraph"]
    assert not by_name["test_leaks_a_little"]["result"]["attribution"]["flamegraph"]
    notes = by_name["test_leaks_a_little"]["result"]["attribution"]["notes"]
    assert any("not among the 1 worst leaking tests" in n for n in notes), notes
    lot = capture_dir_for(report, by_name["test_leaks_a_lot"]["id"])
    little = capture_dir_for(report, by_name["test_leaks_a_little"]["id"])
    assert (lot / FLAMEGRAPH_NAME).is_file()
    assert (little / CAPTURE_NAME).is_file() and not (little / FLAMEGRAPH_NAME).exists()
    assert (report / "assets").is_dir()
    assert not capture_dir_for(report, by_name["test_clean"]["id"]).exists()

    proc = subprocess.run(
        [sys.executable, "-m", "leakcheck", "report", str(report), "--flamegraphs", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test_leaks_a_little: flamegraph made from the kept capture" in proc.stderr
    assert (little / FLAMEGRAPH_NAME).is_file()


def test_cli_report_rejects_a_bad_flamegraph_count(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"schema": "leakcheck-results", "schema_version": 1, "tests": []}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "leakcheck", "report", str(tmp_path), "--flamegraphs", "some"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "--flamegraphs='some'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_quota_keeps_a_capture_while_a_leak_is_among_the_worst_so_far() -> None:
    quota = FlamegraphQuota(2)
    assert quota(3.0) is None and quota(1.0) is None  # the first two always
    assert quota(0.5) is not None  # below both
    assert quota(2.0) is None  # beats 1.0, which leaves the two worst
    note = quota(1.5)
    assert note is not None and "not among the 2 worst" in note and "--leak-flamegraphs=all" in note
    assert FlamegraphQuota(0)(9.0) is not None


PY_SUITE = """
import pytest

KEEP = []


class Big:
    pass


@pytest.mark.leak(iterations=60, max_iterations=120)
def test_py_leaks_a_lot():
    KEEP.extend(Big() for _ in range(8))


@pytest.mark.leak(iterations=60, max_iterations=120)
def test_py_leaks_a_little():
    KEEP.append(Big())
"""


@pytest.mark.slow
@needs_memray
def test_a_python_heap_leak_past_the_quota_runs_no_memray_window(pytester: pytest.Pytester) -> None:
    # Python-heap leaks need memray only for a flamegraph: the second, milder one is not among the
    # 1 worst so far, keeps no capture, and says how to get one; tracemalloc still names its line.
    result, data, report = _run_with_one_flamegraph(pytester, test_py=PY_SUITE)
    result.assert_outcomes(failed=2)
    by_name = {t["id"].split("::")[1]: t for t in data["tests"]}
    lot, little = (by_name[n]["result"]["attribution"] for n in ("test_py_leaks_a_lot", "test_py_leaks_a_little"))
    assert lot["flamegraph"] and not little["flamegraph"]
    assert any("not among the 1 worst leaking tests so far" in n for n in little["notes"]), little["notes"]
    assert not (capture_dir_for(report, by_name["test_py_leaks_a_little"]["id"]) / CAPTURE_NAME).exists()
    assert any(s["location"].startswith("test_py.py:") for s in little["sites"]), little["sites"]
    assert little["retention"]["types"][0]["name"] == "test_py.Big"
