"""Whole-suite helpers without pytest: budgets, shards, exclusions, the summary, the progress line, merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_check, make_finding, make_record, make_run

from leakcheck import Settings
from leakcheck.cli import main
from leakcheck.errors import ConfigError
from leakcheck.progress import LIVE_AFTER, LIVE_EVERY, LOG_EVERY, ProgressLine
from leakcheck.report import write_report
from leakcheck.report.merge import merge_reports
from leakcheck.results import RunResults, TestRecord, load_results
from leakcheck.suite import (
    MIN_VERDICT_CALLS,
    TestSummary,
    excluded,
    fit_budget,
    in_shard,
    iteration_of,
    leak_headline,
    not_repeatable_detail,
    parse_budget,
    parse_shard,
    summarize,
    summary_lines,
)


def test_no_budget_leaves_settings_alone() -> None:
    s = Settings()
    assert fit_budget(s, 5.0, 0).settings is s


def test_a_fast_step_fits_untouched() -> None:
    s = Settings(attribution="off")
    assert fit_budget(s, 1e-6, 10).settings == s


def test_a_slower_step_is_scaled_to_fit_but_never_below_a_verdict() -> None:
    s = Settings(attribution="off")
    budgeted = fit_budget(s, 0.01, 1.0)  # ~85 calls fit
    assert budgeted.scaled and budgeted.settings is not None
    got = budgeted.settings
    calls = got.warmup + got.cap
    assert MIN_VERDICT_CALLS <= calls <= 1.0 * 0.85 / 0.01 + 1
    assert got.iterations >= 20 and got.warmup >= 3
    # just enough for a verdict: still judged, at the floor
    tight = fit_budget(s, 1.0 * 0.85 / MIN_VERDICT_CALLS * 0.99, 1.0).settings
    assert tight is not None and tight.iterations == 20


def test_a_step_that_cannot_fit_a_verdict_is_not_judged() -> None:
    budgeted = fit_budget(Settings(), 3.2, 10.0)
    assert budgeted.settings is None
    assert budgeted.reason.startswith("one call takes 3.2 s; a verdict needs 23 calls, more than the 10 s budget")


def test_the_attribution_window_shrinks_or_goes_with_the_budget() -> None:
    shrunk = fit_budget(Settings(attribution="auto"), 0.001, 1.0).settings
    assert shrunk is not None and shrunk.attribution == "auto" and 5 <= shrunk.attribution_iterations < 50
    gone = fit_budget(Settings(attribution="auto"), 0.01, 1.0).settings
    assert gone is not None and gone.attribution == "off"
    assert fit_budget(Settings(), 1e-6, 10).settings == Settings()


def test_time_settings_are_capped_by_the_budget() -> None:
    got = fit_budget(Settings(min_time=5.0, extend_time=30.0, attribution="off"), 1e-6, 4.0).settings
    assert got is not None and got.min_time == 2.0 and got.extend_time <= 4.0


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan", None])
def test_bad_budgets_name_the_value(value: object) -> None:
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(value, "--leak-budget")


def test_shards_are_stable_disjoint_and_complete() -> None:
    ids = [f"tests/test_x.py::test_{i}[{i % 3}]" for i in range(300)]
    shards = [{n for n in ids if in_shard(n, i, 4)} for i in (1, 2, 3, 4)]
    assert sum(map(len, shards)) == 300 and set().union(*shards) == set(ids)
    assert all(40 < len(s) < 110 for s in shards), [len(s) for s in shards]
    assert shards[0] == {n for n in ids if in_shard(n, 1, 4)}  # the same answer every time
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "2/0"):
        with pytest.raises(ConfigError, match="expected I/N"):
            parse_shard(bad)


def test_exclusion_patterns_match_node_ids() -> None:
    assert excluded("tests/slow/test_a.py::test_b", ["tests/slow/*"])
    assert excluded("tests/test_a.py::TestX::test_io_read", ["*::test_io*"])
    assert not excluded("tests/test_a.py::test_b", ["tests/slow/*", "*::test_io*"])


def test_the_failing_iteration_counts_the_plain_call_as_first() -> None:
    assert iteration_of("warm-up step", 1, 20) == 2
    assert iteration_of("step", 1, 20) == 22
    assert iteration_of("step", 1, 0) == 5  # the runner always warms up three times
    detail = not_repeatable_detail(2, AssertionError("assert 2 == 1\n +  where 2 = len([1, 1])"))
    assert detail == "passed on iteration 1, failed on iteration 2: AssertionError: assert 2 == 1"


def test_summary_lists_each_kind_with_costs_and_counts_the_rest() -> None:
    tests = [TestSummary(f"t::leak{i}", "leaking", "py_blocks +1.00 blocks/iteration", 0.001, 2.0) for i in range(3)]
    tests += [TestSummary("t::once", "not_repeatable", "passed on iteration 1, failed on iteration 2: E", 0.002, 0.01)]
    tests += [TestSummary("t::slow", "not_judged", "one call takes 3.2 s", 3.2, None), TestSummary("t::ok", "passed")]
    lines = summary_lines(tests, limit=2)
    assert lines == [
        "leaking (3):",
        "  t::leak0 - py_blocks +1.00 blocks/iteration [leak run 2.0 s, plain 1.0 ms]",
        "  t::leak1 - py_blocks +1.00 blocks/iteration [leak run 2.0 s, plain 1.0 ms]",
        "  ... and 1 more",
        "not repeatable (1):",
        "  t::once - passed on iteration 1, failed on iteration 2: E [leak run 10.0 ms, plain 2.0 ms]",
        "not judged (1):",
        "  t::slow - one call takes 3.2 s [plain 3.2 s]",
    ]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _line(tty: bool, verbose: bool) -> tuple[ProgressLine, list[str], _Clock]:
    out: list[str] = []
    clock = _Clock()
    return ProgressLine(out.append, tty=tty, verbose=verbose, width=lambda: 60, clock=clock), out, clock


def test_live_line_under_verbose_is_drawn_at_once_rate_limited_and_erased() -> None:
    line, out, clock = _line(tty=True, verbose=True)
    line.start("test_x")
    line.update(10, 200)
    assert out == [" test_x: iteration 10/200"]
    line.update(20, 200)  # the same instant: not redrawn
    assert len(out) == 1
    clock.now += LIVE_EVERY
    line.update(1200, 4000, "py_blocks +2.0/it, extending")
    assert out[-1] == "\b" * 25 + " test_x: iteration 1200/4000, py_blocks +2.0/it, extending"
    line.finish()
    n = len(" test_x: iteration 1200/4000, py_blocks +2.0/it, extending")
    assert out[-1] == "\b" * n + " " * n + "\b" * n
    line.finish()
    assert len(out) == 3  # nothing left to erase


def test_a_short_test_shows_nothing_without_verbose() -> None:
    line, out, clock = _line(tty=True, verbose=False)
    line.start("test_short")
    for i in range(100):
        line.update(i, 200)
    line.finish()
    assert out == []
    line.start("test_long")
    clock.now += LIVE_AFTER
    line.update(5, 200)
    assert out == [" test_long: iteration 5/200"]


def test_a_long_line_is_cut_to_the_room_left() -> None:
    line, out, _ = _line(tty=True, verbose=True)
    line.start("tests/" + "x" * 100 + "::test_y")
    line.update(1, 2)
    assert len(out[0]) <= 60 and out[0].endswith("::test_y: iteration 1/2")


def test_ci_logs_get_one_full_line_every_ten_seconds() -> None:
    line, out, clock = _line(tty=False, verbose=True)
    line.start("test_x")
    line.update(1, 200)
    assert out == []
    clock.now += LOG_EVERY
    line.update(900, 4000)
    clock.now += 1
    line.update(1000, 4000)
    assert out == ["[leakcheck] test_x: iteration 900/4000\n"]  # one line each: the plugin puts it on its own
    line.finish()
    assert len(out) == 1


def _shard(tmp_path: Path, name: str, *records: TestRecord) -> Path:
    out = tmp_path / name
    write_report(make_run(*records), out)
    return out


def test_merging_shards_makes_one_report(tmp_path: Path) -> None:
    a = _shard(
        tmp_path, "a", make_record("t::a", make_check("t::a")), make_record("t::slow", None, "not_judged", "one call")
    )
    b = _shard(tmp_path, "b", make_record("t::b", make_check("t::b")))
    merged = merge_reports([a, b / "results.json"], tmp_path / "merged")
    assert [t.id for t in merged.tests] == ["t::a", "t::slow", "t::b"]
    assert load_results(tmp_path / "merged" / "results.json") == merged
    assert (tmp_path / "merged" / "index.html").is_file()


def test_overlapping_shards_are_refused(tmp_path: Path) -> None:
    a = _shard(tmp_path, "a", make_record("t::a", make_check("t::a")))
    b = _shard(tmp_path, "b", make_record("t::a", make_check("t::a")))
    with pytest.raises(ConfigError, match="holds t::a, which .* holds too; shards must not overlap"):
        merge_reports([a, b], tmp_path / "merged")


def test_new_outcomes_and_costs_round_trip() -> None:
    record = TestRecord(
        "t::x", "not_repeatable", None, "passed on iteration 1, failed on iteration 2: E", None, {}, 0.5, 1.5
    )
    data = make_run(record).to_dict()
    assert data["tests"][0]["plain_seconds"] == 0.5
    assert RunResults.from_dict(json.loads(json.dumps(data))).tests == (record,)


def test_the_headline_leads_with_the_handle_count_and_names_the_rest() -> None:
    result = make_check(
        findings=(
            make_finding("py_blocks", 4.0, 0.5),
            make_finding("native_heap", 2560.0, 32.0),
            make_finding("files", 2.0, 0.02, unit="files"),
            make_finding("rss", 100.0, 16384.0),
        )
    )
    assert leak_headline(result) == "files +2.00 files/iteration (also py_blocks, native_heap)"


def test_the_headline_of_a_heap_leak_keeps_the_checks_order() -> None:
    result = make_check(findings=(make_finding("py_blocks", 1.0, 0.5), make_finding("native_heap", 3200.0, 32.0)))
    assert leak_headline(result) == "py_blocks +1.00 blocks/iteration (also native_heap)"
    native = make_check(findings=(make_finding("py_blocks", 0.0, 0.5), make_finding("native_heap", 3200.0, 32.0)))
    assert leak_headline(native) == "native_heap +3.1 KiB/iteration"
    assert leak_headline(make_check(findings=(make_finding("py_blocks", 0.1, 0.5),))) == ""


def test_a_record_is_summarized_by_its_headline_or_its_reason() -> None:
    leak = make_check("t::a", findings=(make_finding("py_blocks", 1.0, 0.5),))
    failed = "passed on iteration 1, failed on iteration 3: AssertionError: assert 3 < 3\n    def test_once():\n>..."
    records = [
        make_record("t::a", leak, message="t::a: LEAKING after 200 iterations (+20 warm-up)\n  LEAK ..."),
        make_record("t::once", None, "not_repeatable", failed),
        make_record("t::slow", None, "not_judged", "one call takes 3.2 s; a verdict needs 23 calls"),
        make_record("t::bad", None, "error", "assert 1 == 2"),
    ]
    assert [(s.id, s.outcome, s.detail) for s in map(summarize, records)] == [
        ("t::a", "leaking", "py_blocks +1.00 blocks/iteration"),
        ("t::once", "not_repeatable", "passed on iteration 1, failed on iteration 3: AssertionError: assert 3 < 3"),
        ("t::slow", "not_judged", "one call takes 3.2 s; a verdict needs 23 calls"),
        ("t::bad", "error", ""),
    ]


def test_the_merged_summary_reads_as_the_session_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leak = make_check("t::a", findings=(make_finding("py_blocks", 1.0, 0.5),))
    a = _shard(tmp_path, "a", make_record("t::a", leak, message="t::a: LEAKING after 200 iterations (+20 warm-up)"))
    b = _shard(tmp_path, "b", make_record("t::slow", None, "not_judged", "one call takes 3.2 s"))
    assert main(["report", str(tmp_path / "merged"), "--merge", str(a), str(b)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "leakcheck report: merged 2 shards: 2 leak tests, 1 leaking, 1 not judged",
        "leaking (1):",
        "  t::a - py_blocks +1.00 blocks/iteration",
        "not judged (1):",
        "  t::slow - one call takes 3.2 s",
    ]
