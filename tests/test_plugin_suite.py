"""``--leak-all`` over a suite without markers (pytester): leaks, unittest, budgets, exclusions, shards."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
leak_attribution = off
leak_exclude =
    *::test_excluded_by_pattern
"""

SUITE = """
import asyncio
import time
import unittest

import pytest

KEEP = []
COUNTS = {"setUpClass": 0, "setUp": 0, "tearDown": 0}


class TestCaseStyle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        COUNTS["setUpClass"] += 1

    def setUp(self):
        COUNTS["setUp"] += 1
        self.scratch = []

    def tearDown(self):
        COUNTS["tearDown"] += 1

    def test_leaky_method(self):
        KEEP.append(bytes(4096))

    def test_fresh_setup_each_iteration(self):
        # Fails on the second iteration unless setUp ran again before it.
        self.assertEqual(self.scratch, [])
        self.scratch.append(1)


@pytest.mark.parametrize("leaks", [False, True])
def test_param(leaks):
    data = bytes(4096)
    if leaks:
        KEEP.append(data)


@pytest.fixture
def resource():
    items = []
    yield items
    items.clear()


def test_clean_with_fixture(resource):
    resource.append(object())
    resource.pop()


async def test_async_leak():
    await asyncio.sleep(0)
    KEEP.append(bytes(4096))


RUNS = []


def test_passes_only_once():
    RUNS.append(1)
    assert len(RUNS) == 1


def test_slow():
    time.sleep(0.3)


def test_scaled():
    time.sleep(0.004)


@pytest.mark.no_leak
def test_excluded_by_marker():
    KEEP.append(bytes(4096))


def test_excluded_by_pattern():
    KEEP.append(bytes(4096))


@pytest.mark.no_leak
def test_zz_counts():
    assert COUNTS["setUpClass"] == 1, COUNTS
    assert COUNTS["setUp"] == COUNTS["tearDown"] > 40, COUNTS
"""


@pytest.fixture
def pt(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _outcomes(report: Path) -> dict[str, str]:
    data = json.loads((report / "results.json").read_text())
    return {t["id"].split("::", 1)[1]: t["outcome"] for t in data["tests"]}


@pytest.mark.slow
def test_leak_all_flags_exactly_the_leaks(pt: pytest.Pytester) -> None:
    report = pt.path / "report"
    result = pt.runpytest_subprocess(
        "--leak-all", "--leak-budget=1", f"--leak-report={report}", "-p", "asyncio", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=9, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*leakcheck: 9 leak tests, 3 leaking, 1 not repeatable, 1 not judged*",
            "leaking (3):",
            "*::TestCaseStyle::test_leaky_method - py_blocks +1.00 blocks/iteration (also *) [[]leak run *, plain *[]]",
            "not repeatable (1):",
            "*::test_passes_only_once - passed on iteration 1, failed on iteration 2: AssertionError: assert 2 == 1*",
            "not judged (1):",
            "*::test_slow - one call takes * a verdict needs 23 calls, more than the 1.0 s budget*",
        ]
    )
    outcomes = _outcomes(report)
    assert outcomes == {
        "TestCaseStyle::test_leaky_method": "leaking",
        "TestCaseStyle::test_fresh_setup_each_iteration": "passed",
        "test_param[False]": "passed",
        "test_param[True]": "leaking",
        "test_clean_with_fixture": "passed",
        "test_async_leak": "leaking",
        "test_passes_only_once": "not_repeatable",
        "test_slow": "not_judged",
        "test_scaled": "passed",
    }
    data = {t["id"].split("::", 1)[1]: t for t in json.loads((report / "results.json").read_text())["tests"]}
    # 1 s at >= 4 ms a call: the budget cut the 200 default iterations
    assert data["test_scaled"]["result"]["iterations"] < 200
    assert data["test_slow"]["result"] is None and data["test_slow"]["plain_seconds"] >= 0.3
    assert data["test_param[True]"]["leak_seconds"] > 0 and data["test_param[True]"]["plain_seconds"] > 0
    assert not list(report.glob(".leakcheck-records-*"))


def test_without_the_flag_the_suite_is_plain_pytest(pt: pytest.Pytester) -> None:
    result = pt.runpytest_subprocess(
        "-p", "asyncio", "-p", "no:randomly", "--deselect", "test_suite.py::test_zz_counts"
    )
    result.assert_outcomes(passed=11)
    result.stdout.no_fnmatch_line("*leakcheck:*")


def test_explicitly_marked_test_that_cannot_repeat_fails_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleak_attribution = off\n")
    pytester.makepyfile(
        """
        import pytest

        RUNS = []

        @pytest.mark.leak(iterations=20, warmup=2)
        def test_once():
            RUNS.append(1)
            assert len(RUNS) < 3
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*not repeatable: passed on iteration 1, failed on iteration 3: AssertionError*",
            "*leakcheck: 1 leak tests, 0 leaking, 1 not repeatable*",
            "not repeatable (1):",
            "  *::test_once - passed on iteration 1, failed on iteration 3: AssertionError: assert 3 < 3 [[]leak run *",
        ]
    )


ALL_BY_INI = """
import unittest

import pytest

KEEP = []


async def test_async_leak():
    KEEP.append(bytes(4096))


async def test_async_clean():
    pass


@pytest.mark.leak(iterations=30, warmup=3)
def test_marker_options():
    pass


def test_excluded_on_the_command_line():
    KEEP.append(bytes(4096))


class Case(unittest.TestCase):
    runs = 0

    def test_passes_once(self):
        type(self).runs += 1
        self.assertEqual(type(self).runs, 1)
"""


def test_leak_all_from_ini_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleak_all = true\nleak_attribution = off\n")
    pytester.makepyfile(test_by_ini=ALL_BY_INI)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:asyncio",
        "-p",
        "no:randomly",
        "--leak-exclude=*::test_excluded_on_the_command_line",
        f"--leak-report={report}",
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*leakcheck: 4 leak tests, 1 leaking, 1 not repeatable*",
            "leaking (1):",
            "*::test_async_leak - py_blocks +1.00 blocks/iteration*",
            "not repeatable (1):",
            "*::Case::test_passes_once - passed on iteration 1, failed on iteration 2: AssertionError: 2 != 1*",
        ]
    )
    assert _outcomes(report) == {
        "test_async_leak": "leaking",
        "test_async_clean": "passed",
        "test_marker_options": "passed",
        "Case::test_passes_once": "not_repeatable",
    }
    tests = {t["id"].split("::", 1)[1]: t for t in json.loads((report / "results.json").read_text())["tests"]}
    assert tests["test_marker_options"]["result"]["iterations"] == 30  # the marker's, under --leak-all too


SIMULATED_CLOCK = """
NOW = [0.0]


def now():
    return NOW[0]


def tick(seconds):
    NOW[0] += seconds
"""

PROGRESS_CONFTEST = """
import pytest

import leakcheck.plugin.suite_runs
import leakcheck.progress
import simclock


class ProgressLine(leakcheck.progress.ProgressLine):
    # on the clock the tests advance, so what is drawn does not depend on this machine's speed
    def __init__(self, *args, **kwargs):
        super().__init__(*args, clock=simclock.now, **kwargs)


leakcheck.plugin.suite_runs.ProgressLine = ProgressLine


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if {tty}:
        config.pluginmanager.get_plugin("terminalreporter").isatty = lambda: True
"""

PROGRESS = """
import pytest

import simclock

KEEP = []


@pytest.mark.leak(iterations=200, warmup=5)
def test_leaky():
    simclock.tick({seconds})  # simulated seconds per call
    KEEP.append(bytes(4096))


def test_zz_plain():
    pass
"""

#: simulated seconds per call of a long test (every sample is due to be drawn) and of a short one
#: (even 4000 calls take less than leakcheck.progress.LIVE_AFTER)
LONG, SHORT = 60.0, 0.0001


def _progress_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str, tty: bool, tests: str
) -> pytest.RunResult:
    """Run ``tests`` at 80 columns on the simulated clock, on a terminal or into a log."""
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makeini("[pytest]\nleak_attribution = off\n")
    pytester.makepyfile(simclock=SIMULATED_CLOCK, test_progress=tests)
    pytester.makeconftest(PROGRESS_CONFTEST.format(tty=tty))
    return pytester.runpytest_subprocess(*args, "-p", "no:randomly")


def _rendered(line: str) -> str:
    """``line`` as a terminal shows it: each backspace moves the cursor one column left."""
    shown: list[str] = []
    at = 0
    for ch in line:
        if ch == "\b":
            at = max(at - 1, 0)
            continue
        shown[at : at + 1] = [ch]
        at += 1
    return "".join(shown).rstrip()


def _frames(line: str) -> list[str]:
    """What a terminal showed of ``line`` each time before the cursor moved back (to redraw or erase)."""
    return [_rendered(line[: m.start()]) for m in re.finditer("\b+", line)]


@pytest.mark.parametrize("terminal", ["log", "tty", "quiet"])
def test_progress_reaches_the_terminal_not_the_captured_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, terminal: str
) -> None:
    verbosity, seconds = ("-q", SHORT) if terminal == "quiet" else ("-v", LONG)
    tests = PROGRESS.format(seconds=seconds)
    result = _progress_run(pytester, monkeypatch, verbosity, tty=terminal != "log", tests=tests)
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    # Drawn around pytest's capture: never in the failing test's "Captured stdout call" section.
    assert "Captured stdout" not in out
    assert "iteration 0/0" not in out  # the baseline's sample, before the first pass has a target
    if terminal == "quiet":  # a short test shows nothing without -v
        result.stdout.no_fnmatch_line("*: iteration */*")
        assert "\b" not in out and "[leakcheck]" not in out
    elif terminal == "log":
        result.stdout.fnmatch_lines(["test_progress.py::test_leaky ", "[[]leakcheck[]] test_leaky: iteration */*"])
    else:
        (line,) = [x for x in result.stdout.lines if x.startswith("test_progress.py::test_leaky ")]
        assert " test_leaky: iteration " in line and "\b" in line
        # erased when the test ends: what is left on screen is pytest's own line
        assert re.fullmatch(r"test_progress\.py::test_leaky FAILED +\[ 50%\]", _rendered(line)), repr(line)


def test_at_80_columns_the_note_gives_way_to_the_test_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = PROGRESS.format(seconds=LONG)
    result = _progress_run(pytester, monkeypatch, "-v", tty=True, tests=tests)
    result.assert_outcomes(failed=1, passed=1)
    (line,) = [x for x in result.stdout.lines if x.startswith("test_progress.py::test_leaky ")]
    frames = [x for x in _frames(line) if x != "test_progress.py::test_leaky"]  # that one: erased
    drawn = [x.removeprefix("test_progress.py::test_leaky  ") for x in frames]
    assert len(drawn) > 5, drawn
    for frame, text in zip(frames, drawn):
        assert re.match(r"test_leaky: iteration \d+/\d+", text), frame  # the name first, never cut
        assert len(frame) <= 79, frame  # within 80 columns, the last one spare
    # extended runs come with a note ("native_heap +4.1 KiB/it, extending") that has no room here
    assert "test_leaky: iteration 400/400" in drawn, drawn
    assert "extending" not in line


@pytest.mark.parametrize("verbose", [True, False], ids=["verbose", "default"])
def test_in_a_log_each_progress_line_is_one_line_and_pytest_s_line_resumes_after_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, verbose: bool
) -> None:
    tests = PROGRESS.format(seconds=LONG)
    result = _progress_run(pytester, monkeypatch, *(["-v"] if verbose else []), tty=False, tests=tests)
    result.assert_outcomes(failed=1, passed=1)
    lines = result.stdout.lines
    at = [i for i, x in enumerate(lines) if x.startswith("[leakcheck] ")]
    assert len(at) > 5 and at == list(range(at[0], at[-1] + 1)), lines  # together: no blank line between
    assert all(re.fullmatch(r"\[leakcheck\] test_leaky: iteration \d+/\d+(, .+/it, extending)?", lines[i]) for i in at)
    assert "extending" in lines[at[-1]]  # a log keeps the whole line, however long
    before, after = lines[at[0] - 1], lines[at[-1] + 1]
    if verbose:
        assert before == "test_progress.py::test_leaky "
        assert re.fullmatch(r"test_progress\.py::test_leaky FAILED +\[ 50%\]", after), after
        (plain,) = [x for x in lines if x.startswith("test_progress.py::test_zz_plain ")]
        assert re.fullmatch(r"test_progress\.py::test_zz_plain PASSED +\[100%\]", plain), plain
        assert len(after) == len(plain) == 79  # pytest's column of percentages, as without progress lines
    else:
        assert before == "test_progress.py "
        assert re.fullmatch(r"test_progress\.py F\. +\[100%\]", after) and len(after) == 79, after


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "log"])
def test_under_quiet_only_a_long_test_shows_progress(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    tests = f"""
import pytest

import simclock


@pytest.mark.leak(iterations=200, warmup=5)
def test_short():
    simclock.tick({SHORT})


@pytest.mark.leak(iterations=200, warmup=5)
def test_long():
    simclock.tick({LONG})
"""
    result = _progress_run(pytester, monkeypatch, "-q", tty=tty, tests=tests)
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "test_short" not in out
    assert "test_long: iteration " in out


def test_first_run_failure_is_the_test_s_own_failure(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleak_attribution = off\n")
    pytester.makepyfile(
        """
        import unittest

        def test_fails():
            assert 1 == 2

        class T(unittest.TestCase):
            def test_fails_too(self):
                self.assertEqual(1, 2)
        """
    )
    result = pytester.runpytest_subprocess("--leak-all")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*assert 1 == 2*", "*AssertionError: 1 != 2*"])
    result.stdout.no_fnmatch_line("*not repeatable*")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--leak-budget=soon"], "*budget*'soon'*expected seconds per test*"),
        (["--leak-budget=-1"], "*budget*expected seconds >= 0*"),
        (["--leak-shard=3/2"], "*shard*'3/2'*expected I/N with 1 <= I <= N*"),
        (["--leak-shard=1"], "*shard*expected I/N*"),
    ],
)
def test_bad_suite_options_are_one_line_usage_errors(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def _ids(result: pytest.RunResult) -> set[str]:
    return {line.split(" ")[0] for line in result.stdout.lines if "::" in line and " PASSED" in line}


def test_shards_split_the_suite_disjointly_and_completely(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("\n".join(f"def test_{i}():\n    pass\n" for i in range(30)))
    everything = pytester.runpytest("-v", "-p", "no:randomly")
    shards = [pytester.runpytest("-v", "-p", "no:randomly", f"--leak-shard={i}/3") for i in (1, 2, 3)]
    seen = [_ids(r) for r in shards]
    assert all(seen), "each shard of 30 tests should get some"
    assert sum(len(s) for s in seen) == 30 == len(_ids(everything))
    assert set().union(*seen) == _ids(everything)


@pytest.mark.slow
def test_leak_all_under_xdist_and_shards_merged_by_leakcheck_report(pt: pytest.Pytester) -> None:
    whole = pt.path / "whole"
    result = pt.runpytest_subprocess(
        "--leak-all",
        "--leak-budget=1",
        f"--leak-report={whole}",
        "-p",
        "asyncio",
        "-p",
        "xdist",
        "-n",
        "2",
        "--deselect",
        "test_suite.py::test_zz_counts",
    )
    result.assert_outcomes(passed=8, failed=3)
    result.stdout.fnmatch_lines(["*leakcheck: 9 leak tests, 3 leaking, 1 not repeatable, 1 not judged*"])
    expected = _outcomes(whole)
    assert len(expected) == 9
    shards = []
    for i in (1, 2):
        out = pt.path / f"shard{i}"
        pt.runpytest_subprocess(
            "--leak-all",
            "--leak-budget=1",
            f"--leak-report={out}",
            "-p",
            "asyncio",
            f"--leak-shard={i}/2",
            "--deselect",
            "test_suite.py::test_zz_counts",
        )
        shards.append(out)
    merged = pt.path / "merged"
    proc = subprocess.run(
        [sys.executable, "-m", "leakcheck", "report", str(merged), "--merge", *map(str, shards)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _outcomes(merged) == expected
    assert "9 leak tests, 3 leaking" in proc.stderr
    assert (merged / "index.html").is_file()
