"""``leakcheck compare``: regressions flagged, noise not, bad files explained."""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import make_check, make_finding, make_record, make_run

from leakcheck.cli import add_command, run_command
from leakcheck.cli.compare import CompareCommand
from leakcheck.compare import (
    compare,
    format_markdown,
    format_text,
    holm,
    mann_whitney_u,
    per_iteration_deltas,
    series_peak,
)
from leakcheck.exit_codes import BAD_INPUT as EXIT_BAD_INPUT
from leakcheck.exit_codes import FOUND as EXIT_REGRESSION
from leakcheck.exit_codes import OK as EXIT_OK
from leakcheck.report.files import write_results
from leakcheck.results import (
    LeakedHandle,
    RunResults,
    Series,
    TestRecord,
    Verdict,
)

ITERATIONS = 200

# probe, unit, noise s.d. per reading, limit per iteration, starting level
MEASURES = (
    ("py_blocks", "blocks", 3.0, 1.0, 50_000.0),
    ("native_heap", "B", 2_000.0, 512.0, 10_000_000.0),
    ("fds", "fds", 0.0, 0.5, 12.0),
)


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def noisy_record(
    rng: random.Random,
    test_id: str,
    slopes: dict[str, float],
    *,
    iterations: int = ITERATIONS,
    handles: tuple[LeakedHandle, ...] = (),
) -> TestRecord:
    """A test record with realistic series: level + slope * i + rounded Gaussian noise."""
    its = tuple(range(iterations + 1))
    findings, series = [], []
    for probe, unit, sigma, limit, level in MEASURES:
        s = slopes.get(probe, 0.0)
        values = tuple(float(round(level + s * i + (rng.gauss(0.0, sigma) if sigma else 0.0))) for i in its)
        growth = _slope(its, values)
        findings.append(make_finding(probe, growth, limit, title=probe.replace("_", " "), unit=unit))
        series.append(Series(probe, unit, its, values))
    result = make_check(
        test_id,
        iterations=iterations,
        findings=tuple(findings),
        samples=tuple(series),
        handles=handles,
    )
    return make_record(test_id, result)


LEAKS = {
    "scenarios/test_pool.py::test_leaky_cache": {"py_blocks": 5.0},
    "scenarios/test_queries.py::test_native[inbox]": {"native_heap": 4096.0},
    "scenarios/test_cleanup.py::test_fd_per_call": {"fds": 1.0},
}
CLEAN = ("scenarios/test_pool.py::test_acquire_release", "scenarios/test_queries.py::test_today")


def noisy_run(rng: random.Random, factor: float = 1.0) -> RunResults:
    """The clean tests, then the leaking ones with their growth times ``factor``."""
    tests = [noisy_record(rng, tid, {}) for tid in CLEAN]
    tests += [noisy_record(rng, tid, {k: v * factor for k, v in s.items()}) for tid, s in LEAKS.items()]
    return make_run(*tests)


# --------------------------------------------------------------------------- statistics


def test_mann_whitney_matches_hand_computed_values() -> None:
    mw = mann_whitney_u([1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8, 9, 10, 11, 12])
    # U = 56 (ties at 5..8 share ranks); tie-corrected z with continuity ≈ 2.47
    assert mw.u == 56.0
    assert 0.005 < mw.p_greater < 0.008
    assert mw.p_less > 0.99
    tied = mann_whitney_u([1.0] * 10, [1.0] * 12)
    assert (tied.z, tied.p_greater, tied.p_less) == (0.0, 1.0, 1.0)
    assert mann_whitney_u([], [1.0]).p_greater == 1.0


def test_mann_whitney_is_calibrated_under_the_null() -> None:
    rng = random.Random(7)
    trials = 1500
    hits = sum(
        mann_whitney_u([rng.gauss(0, 1) for _ in range(30)], [rng.gauss(0, 1) for _ in range(30)]).p_greater < 0.05
        for _ in range(trials)
    )
    assert 0.025 < hits / trials < 0.075, f"rate {hits / trials:.3f} at alpha 0.05"


def test_per_iteration_deltas_use_disjoint_windows_and_the_iteration_gaps() -> None:
    s = Series("p", "blocks", (0, 2, 4, 6, 8, 10), (0.0, 4.0, 8.0, 12.0, 16.0, 20.0))
    assert per_iteration_deltas(s) == [2.0, 2.0, 2.0]
    assert per_iteration_deltas(s, window=4) == [2.0, 2.0]  # 0→4, then 6→10
    uneven = Series("p", "blocks", (0, 1, 5, 6), (0.0, 1.0, 9.0, 9.0))
    assert per_iteration_deltas(uneven) == [1.0, 0.0]  # (1-0)/1, then (9-9)/1
    assert series_peak(Series("p", "b", (0, 1, 2), (10.0, 30.0, 20.0))) == 20.0


def test_holm_adjusts_in_order() -> None:
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})


# --------------------------------------------------------------------------- noise vs regressions

SEEDS = 200


def test_noise_alone_is_not_a_regression() -> None:
    false_positives = []
    for seed in range(SEEDS):
        rng = random.Random(seed)
        result = compare(noisy_run(rng), noisy_run(rng))
        if result.has_regression:
            false_positives.append((seed, [t.reasons for t in result.regressions]))
    rate = len(false_positives) / SEEDS
    assert rate <= 0.01, f"false-positive rate {rate:.1%} over {SEEDS} seeds: {false_positives[:3]}"


def test_noisy_slopes_stay_quiet_thanks_to_the_significance_test() -> None:
    # Readings so noisy that half the measures "rose" more than 10% by chance:
    # only the Mann-Whitney test (Holm-adjusted over the 10 measures) keeps them quiet.
    def run(rng: random.Random) -> RunResults:
        tests = []
        for i in range(10):
            its = tuple(range(ITERATIONS + 1))
            vals = tuple(float(round(1000 + i + rng.gauss(0, 60))) for i in its)
            f = make_finding("py_blocks", _slope(its, vals), 0.1, Verdict.UNBOUNDED, title="Python heap")
            res = make_check(
                f"t{i}",
                iterations=ITERATIONS,
                warmup=0,
                findings=(f,),
                samples=(Series("py_blocks", "blocks", its, vals),),
            )
            tests.append(make_record(f"t{i}", res, "leaking"))
        return make_run(*tests)

    seeds = 100
    flagged = sum(compare(run(random.Random(s)), run(random.Random(s + 10_000))).has_regression for s in range(seeds))
    assert flagged / seeds <= 0.02, f"false-positive rate {flagged / seeds:.1%} over {seeds} seeds"


def test_a_25_percent_rise_in_growth_is_flagged() -> None:
    missed = []
    for seed in range(SEEDS):
        rng = random.Random(seed)
        result = compare(noisy_run(rng), noisy_run(rng, factor=1.25))
        flagged = {t.id for t in result.regressions}
        if flagged != set(LEAKS):
            missed.append((seed, sorted(set(LEAKS) - flagged), sorted(flagged - set(LEAKS))))
    rate = 1 - len(missed) / SEEDS
    assert rate >= 0.95, f"detection rate {rate:.1%} over {SEEDS} seeds; missed {missed[:3]}"


def test_tiny_growth_near_zero_is_not_a_regression() -> None:
    # 0.001 -> 0.002 blocks/iteration doubles, but is far below the limit's floor.
    its = tuple(range(201))
    base_vals = tuple(float(i // 1000) for i in its)
    cur_vals = tuple(float(i // 500) for i in its)

    def rec(growth: float, vals: tuple[float, ...]) -> TestRecord:
        f = make_finding("py_blocks", growth, 1.0, Verdict.BOUNDED, title="Python heap")
        samples = (Series("py_blocks", "blocks", its, vals),)
        return make_record("t", make_check(warmup=0, findings=(f,), samples=samples), "passed")

    result = compare(RunResults((rec(0.001, base_vals),)), RunResults((rec(0.002, cur_vals),)))
    assert not result.has_regression
    assert result.tests[0].status == "unchanged"


def test_clean_to_leaking_is_flagged_and_leaking_to_clean_is_an_improvement() -> None:
    rng = random.Random(1)
    clean = noisy_record(rng, "t::a", {})
    leaking = noisy_record(rng, "t::a", {"py_blocks": 5.0})
    result = compare(RunResults((clean,)), RunResults((leaking,)))
    assert result.has_regression
    (delta,) = result.regressions
    assert "was clean, now leaks" in delta.reasons
    assert any(m.probe == "py_blocks" and m.status == "regressed" for m in delta.measures)

    back = compare(RunResults((leaking,)), RunResults((clean,)))
    assert not back.has_regression
    assert [t.id for t in back.improvements] == ["t::a"]
    assert "was leaking, now clean" in back.improvements[0].reasons


def test_handles_left_behind_are_a_regression() -> None:
    rng = random.Random(2)
    base = noisy_record(rng, "t::h", {})
    cur = noisy_record(rng, "t::h", {}, handles=(LeakedHandle("thread", "Thread-3 (worker)"),))
    result = compare(RunResults((base,)), RunResults((cur,)))
    assert result.has_regression
    assert any("thread" in r for r in result.regressions[0].reasons)


def test_tests_present_in_only_one_file_are_listed() -> None:
    rng = random.Random(3)
    base = RunResults((noisy_record(rng, "t::gone", {}), noisy_record(rng, "t::kept", {})))
    cur = RunResults(
        (
            noisy_record(rng, "t::kept", {}),
            noisy_record(rng, "t::new_clean", {}),
            noisy_record(rng, "t::new_leak", {"fds": 1.0}),
        )
    )
    result = compare(base, cur)
    assert result.missing == ("t::gone",)
    assert result.added == ("t::new_clean", "t::new_leak")
    assert [t.id for t in result.regressions] == ["t::new_leak"]  # a new test that leaks
    text = format_text(result)
    assert "t::gone" in text and "t::new_clean" in text
    assert result.exit_status() == EXIT_REGRESSION

    only_missing = compare(base, RunResults((noisy_record(rng, "t::kept", {}),)))
    assert only_missing.exit_status() == EXIT_OK
    assert only_missing.exit_status(fail_on_missing=True) == EXIT_REGRESSION


def test_error_records_are_listed_as_not_compared() -> None:
    rng = random.Random(4)
    base = RunResults((noisy_record(rng, "t::e", {}),))
    cur = RunResults((TestRecord("t::e", "error", None, "RuntimeError: boom"),))
    (delta,) = compare(base, cur).tests
    assert delta.status == "not compared"
    assert "'error'" in delta.reasons[0]


def test_markdown_escapes_names_and_flags_regressions() -> None:
    rng = random.Random(5)
    tid = "t::x[a|b*_`]"
    base = RunResults((noisy_record(rng, tid, {}),))
    cur = RunResults((noisy_record(rng, tid, {"py_blocks": 5.0}),))
    md = format_markdown(compare(base, cur), baseline_name="base.json", current_name="cur.json")
    assert md.startswith("### :x: Leak comparison")
    assert "| Status | Test | Measure |" in md
    assert "t::x\\[a\\|b\\*\\_\\`\\]" in md
    assert "a|b" not in md


# --------------------------------------------------------------------------- the command


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="leakcheck compare")
    add_command(parser, CompareCommand())
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(11)
    base, same, worse = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "worse.json"
    write_results(base, noisy_run(rng))
    write_results(same, noisy_run(rng))
    write_results(worse, noisy_run(rng, factor=1.25))
    return base, same, worse


def test_command_exit_status_and_output(runs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, same, worse = runs
    assert _run_cli([str(base), str(same)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "OK: 0 regressed" in out
    assert "py blocks: " in out and "blocks/iter" in out

    assert run_command(CompareCommand(), _ns(base, worse)) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "REGRESSION: 3 regressed" in out


def test_command_markdown_and_summary_file(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _, worse = runs
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    assert _run_cli([str(base), str(worse), "--markdown", "--summary", str(summary)]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert out.startswith("### :x: Leak comparison: 3 regressed")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n### :x: Leak comparison")  # appended, not replaced


def test_command_options_are_validated(runs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, same, _ = runs
    assert _run_cli([str(base), str(same), "--threshold", "20%", "--alpha", "0.05"]) == EXIT_OK
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        _run_cli([str(base), str(same), "--alpha", "2"])
    assert exc.value.code == 2
    assert "alpha must be between 0 and 1" in capsys.readouterr().err


def _ns(baseline: Path, current: Path, **kw: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "threshold": 0.10,
        "alpha": 0.01,
        "min_effect": 0.25,
        "correction": "holm",
        "fail_on_missing": False,
        "markdown": False,
        "summary": None,
    }
    defaults.update(kw)
    return argparse.Namespace(baseline=str(baseline), current=str(current), **defaults)


def _other_version(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["schema_version"] = 99
    return json.dumps(data)


BAD_FILES = {
    "other schema version": (_other_version, "schema version 99"),
    "truncated JSON": (lambda p: p.read_text(encoding="utf-8")[:200], "not valid JSON"),
    "not JSON": (lambda p: "<html>not json</html>", "not valid JSON"),
    "empty": (lambda p: "", "empty"),
    "not ours": (lambda p: '{"tests": []}', "not a leakcheck results file"),
    "malformed": (
        lambda p: json.dumps({"schema": "leakcheck-results", "schema_version": 1, "environment": 3, "tests": []}),
        "malformed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("side", ["baseline", "current"])
def test_bad_files_exit_2_with_one_clear_line(
    case: str,
    side: str,
    runs: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, same, _ = runs
    make, expected = BAD_FILES[case]
    bad = tmp_path / "bad.json"
    bad.write_text(make(base), encoding="utf-8")
    args = _ns(bad, same) if side == "baseline" else _ns(base, bad)
    assert run_command(CompareCommand(), args) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"leakcheck compare: error: {bad}: ")
    assert expected in lines[0]
    assert "Traceback" not in captured.err


def test_missing_and_binary_files_exit_2(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _, _ = runs
    missing = tmp_path / "nope.json"
    assert run_command(CompareCommand(), _ns(base, missing)) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == (
        f"leakcheck compare: error: {missing}: no such file; "
        "pass the results.json that --leak-report DIR (or --report DIR) wrote, or DIR itself\n"
    )
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert run_command(CompareCommand(), _ns(binary, base)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"leakcheck compare: error: {binary}: ") and err.count("\n") == 1
