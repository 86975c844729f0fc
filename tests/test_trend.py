"""``leakcheck trend``: one chart per test and measure, runs in created order, names escaped."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from leakcheck.cli import add_command
from leakcheck.cli.trend import TrendCommand
from leakcheck.report.files import write_results
from leakcheck.report.trend import order_runs, render_trend
from leakcheck.results import CheckResult, Finding, RunResults, TestRecord, Verdict

EVIL = 'scenarios/test_x.py::test_q[<script>alert("x")</script>&]'


def _run(created: str, growth: float) -> RunResults:
    def rec(tid: str, g: float) -> TestRecord:
        findings = (
            Finding(
                "py_blocks",
                "Python heap <blocks>",
                "blocks",
                g,
                1.0,
                Verdict.UNBOUNDED if g > 1 else Verdict.BOUNDED,
            ),
            Finding("native_heap", "Native heap", "B", g * 100, 512.0, Verdict.BOUNDED),
            Finding("uss", "USS", "B", 0.0, 4096.0, Verdict.UNAVAILABLE, note="no psutil"),
        )
        result = CheckResult(tid, 100, 10, findings)
        return TestRecord(tid, "leaking" if result.leaking else "passed", result)

    tests = (rec("t::a", growth), rec(EVIL, 0.0), TestRecord("t::err", "error", None, "boom"))
    return RunResults(tests, created=created, environment={"python": "3.12.3", "platform": "linux"})


def test_one_svg_per_test_and_measure_with_escaped_names() -> None:
    runs = [
        ("r2.json", _run("2025-01-02T00:00:00+00:00", 2.0)),
        ("r1.json", _run("2025-01-01T00:00:00Z", 0.0)),
    ]
    page = render_trend(runs, title="Nightly <trend>")
    assert page.count("<svg") == 4  # 2 tests x 2 available measures; the unavailable one is skipped
    assert page.count("</svg>") == 4
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "Python heap &lt;blocks&gt;" in page
    assert "<title>Nightly &lt;trend&gt;</title>" in page
    assert 'class="leak"' in page and 'class="limit"' in page
    assert "No check results in these runs." in page  # t::err listed, not dropped
    # oldest first: r1 (Jan 1) is run 1
    assert page.index("r1.json") < page.index("r2.json")
    assert re.search(r"2025-01-01: 0 blocks/iteration", page)


def test_runs_are_ordered_by_created_undated_last() -> None:
    a, b, c = (
        _run("2025-03-01T00:00:00+00:00", 1),
        _run("", 1),
        _run("2025-02-01T00:00:00+00:00", 1),
    )
    assert [n for n, _ in order_runs([("a", a), ("b", b), ("c", c)])] == ["c", "a", "b"]


def test_command_writes_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for i in range(3):
        p = tmp_path / f"results-{i}.json"
        write_results(p, _run(f"2025-01-0{i + 1}T00:00:00+00:00", float(i)))
        paths.append(str(p))
    out = tmp_path / "trend.html"
    parser = argparse.ArgumentParser()
    add_command(parser, TrendCommand())
    args = parser.parse_args([*paths, "-o", str(out)])
    assert args.func(args) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "wrote" in capsys.readouterr().out

    bad = tmp_path / "bad.json"
    bad.write_text("nope", encoding="utf-8")
    args = parser.parse_args([*paths, str(bad), "-o", str(out)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"leakcheck trend: error: {bad}: not valid JSON") and err.count("\n") == 1
