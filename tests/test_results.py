"""results.json: round trips, NaN, and files that are not ours say what is wrong."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import make_check, make_evidence, make_finding, make_series

from leakcheck import ResultsFileError, load_results
from leakcheck.report.files import write_results
from leakcheck.results import (
    CheckResult,
    LeakedHandle,
    RunResults,
    TestRecord,
    Verdict,
)


def _result(growth: float = 1.0) -> CheckResult:
    return make_check(
        findings=(make_finding(growth=growth, verdict=Verdict.UNBOUNDED, evidence=make_evidence(growth)),),
        samples=(make_series(n=20),),
        handles=(LeakedHandle("fd", "fd 7 -> /tmp/x"), LeakedHandle("fd", "fd 8 -> /tmp/x")),
    )


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    run = RunResults.new([TestRecord("a::b", "leaking", _result()), TestRecord("a::c", "error", None, "boom")])
    write_results(tmp_path / "results.json", run)
    assert load_results(tmp_path / "results.json") == run
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"], "the temp file of the atomic write is gone"


def test_nan_is_written_as_null_and_read_back_as_nan(tmp_path: Path) -> None:
    run = RunResults.new([TestRecord("a", "passed", _result(math.nan))])
    write_results(tmp_path / "r.json", run)
    assert "NaN" not in (tmp_path / "r.json").read_text()
    back = load_results(tmp_path / "r.json").tests[0].result
    assert back is not None and math.isnan(back.findings[0].growth_per_iteration)


def test_str_names_the_measure_growth_and_groups_alike_handles() -> None:
    text = str(_result())
    assert "LEAKING after 200 iterations (+20 warm-up)" in text
    assert "Python heap (live blocks): unbounded, 1 blocks/iteration (limit 0.50 blocks)" in text
    assert "Mann-Kendall" in text
    assert "left behind (2 handles, 1 kinds):" in text
    assert "2 \u00d7 fd: fd 7 -> /tmp/x" in text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b'{"schema": "leakcheck-results", "schema_version": 1, "tests": [', "not valid JSON"),
        (b"\xff\xfe\x00binary", "not text"),
        (b'{"hello": 1}', "not a leakcheck results file"),
        (b'{"schema": "leakcheck-results", "schema_version": 99, "tests": []}', "schema version 99"),
        (b'{"schema": "leakcheck-results", "schema_version": 1, "tests": [{"id": 1}]}', "malformed results"),
        (
            b'{"schema": "leakcheck-results", "schema_version": 1, "tests": [], "environment": []}',
            "environment is a list",
        ),
    ],
)
def test_bad_files_raise_a_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match=problem) as info:
        load_results(path)
    assert info.value.path == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsFileError, match="no such file"):
        load_results(tmp_path / "nope.json")


def test_json_is_plain(tmp_path: Path) -> None:
    write_results(tmp_path / "r.json", RunResults.new([TestRecord("a", "passed", _result())]))
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == "leakcheck-results" and data["schema_version"] == 1
    assert data["tests"][0]["result"]["findings"][0]["verdict"] == "unbounded"
