"""``leakcheck baseline``: stored atomically, named per Python and platform, readable."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from leakcheck.cli import add_command
from leakcheck.cli.baseline import BaselineCommand
from leakcheck.report.baseline import default_baseline_path, update_baseline
from leakcheck.report.files import write_results
from leakcheck.results import (
    AllocationSite,
    Attribution,
    CheckResult,
    Finding,
    RunResults,
    TestRecord,
    Verdict,
    load_results,
)


def _run(python: str = "3.12.3", platform: str = "linux") -> RunResults:
    site = AllocationSite("tracemalloc", "pool.py:88", ("pool.py:88",), 64.0, 1.0, 0.99)
    finding = Finding("py_blocks", "Python heap", "blocks", 2.0, 1.0, Verdict.UNBOUNDED)
    result = CheckResult("t::leak", 200, 20, (finding,), attribution=Attribution(sites=(site,)))
    tests = (TestRecord("t::leak", "leaking", result), TestRecord("t::err", "error", None, "boom"))
    return RunResults(
        tests,
        created="2025-01-02T03:04:05+00:00",
        environment={"python": python, "platform": platform},
    )


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="leakcheck baseline")
    add_command(parser, BaselineCommand())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_default_path_is_per_platform_and_python() -> None:
    assert default_baseline_path(_run()) == Path("baselines/linux-py3.12.json")
    assert default_baseline_path(_run("3.9.18", "darwin"), "b") == Path("b/darwin-py3.9.json")
    with pytest.raises(ValueError, match="--to"):
        default_baseline_path(_run("", "linux"))


def test_update_stores_without_attribution_and_leaves_no_temp_files(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    write_results(results, _run())
    path, stored = update_baseline(results, directory=tmp_path / "baselines")
    assert path == tmp_path / "baselines" / "linux-py3.12.json"
    assert load_results(path) == stored
    assert stored.tests[0].result is not None and stored.tests[0].result.attribution is None
    assert [p.name for p in path.parent.iterdir()] == ["linux-py3.12.json"]


def test_cli_update_show_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    write_results(results, _run())
    target = tmp_path / "b.json"
    assert _cli(["update", str(results), "--to", str(target), "--keep-attribution"]) == 0
    out = capsys.readouterr().out
    assert f"stored baseline {target} (2 tests, 1 leaking)" in out
    assert "known leak kept in the baseline: t::leak" in out and "t::err (error)" in out
    assert load_results(target).tests[0].result.attribution is not None  # type: ignore[union-attr]

    assert _cli(["show", str(target)]) == 0
    out = capsys.readouterr().out
    assert "2 tests, created 2025-01-02" in out and "LEAKING  t::leak" in out

    assert _cli(["path", str(results), "--dir", "base"]) == 0
    assert capsys.readouterr().out == "base/linux-py3.12.json\n"


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "leakcheck-res', encoding="utf-8")
    assert _cli(["update", str(bad), "--to", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"leakcheck baseline update: error: {bad}: not valid JSON")
    assert not (tmp_path / "x.json").exists()
    assert _cli(["show", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
