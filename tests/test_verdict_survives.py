"""A crash in the attribution window (memray's tracker can SIGSEGV) does not lose the verdict reached before it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_check, make_finding

from leakcheck.crashguard import CRASH_NOTE, VerdictGuard

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

# The window that crashes: os.abort() where memray would start tracking.
CONFTEST = """
import os
import leakcheck.attribution as attribution

class CrashingWindow:
    def start(self):
        os.abort()
    def checkpoint(self, i):
        pass
    def finish(self, n):
        raise AssertionError("never reached")

attribution.open_window = lambda *args, **kwargs: CrashingWindow()
"""

TESTS = """
import pytest
_keep = []

@pytest.mark.leak(iterations=20, warmup=2)
def test_leaky():
    _keep.append(bytearray(4096))

def test_after():
    pass
"""


@pytest.fixture
def crashing(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


@pytest.mark.slow
def test_under_xdist_the_crashed_test_keeps_its_verdict_in_the_merged_report(
    pytester: pytest.Pytester, crashing: Path
) -> None:
    report = pytester.path / "rep"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", f"--leak-report={report}")
    result.stdout.fnmatch_lines(
        [
            "*worker 'gw0' crashed while running '*::test_leaky'*",
            f"*{CRASH_NOTE}*",
            "*test_leaky: LEAKING after*",
            "*LEAK Native heap*",
            "*1 failed, 1 passed*",
        ]
    )
    data = json.loads((report / "results.json").read_text())
    (test,) = [t for t in data["tests"] if t["id"].endswith("::test_leaky")]
    assert test["outcome"] == "leaking"
    assert CRASH_NOTE in test["result"]["attribution"]["notes"]
    assert not [p for p in crashing.iterdir() if p.name.startswith("leakcheck-")]


@pytest.mark.slow
def test_a_single_process_that_dies_still_prints_the_verdict(pytester: pytest.Pytester, crashing: Path) -> None:
    # Run directly, not through pytester: reading the pipes to their end waits for the
    # guardian too, which holds stderr until it has said its piece.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:faulthandler"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGABRT, proc.stdout + proc.stderr
    lines = pytest.LineMatcher(proc.stderr.splitlines())
    lines.fnmatch_lines(
        [
            f"*test_leaky crashed the process in its attribution window; {CRASH_NOTE}*",
            "*its verdict, reached before the window:*",
            "*test_leaky: LEAKING after*",
        ]
    )
    assert not [p for p in crashing.iterdir() if p.name.startswith("leakcheck-")]


def test_a_window_that_finishes_leaves_no_verdict_behind(tmp_path: Path) -> None:
    """The look-alike: record, clear, and nothing is there to recover or to print."""
    guard = VerdictGuard(tmp_path / "v", guardian=True)
    (tmp_path / "v").mkdir()
    result = make_check("t", findings=(make_finding(growth=5.0),))
    guard.record("t", result)
    assert guard.path_for("t").is_file()
    guard.clear("t")
    assert guard.recover("t") is None
    assert list((tmp_path / "v").iterdir()) == []


def test_recover_gives_the_recorded_verdict_with_the_note(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    guard = VerdictGuard(tmp_path / "v", guardian=False)
    result = make_check("t", findings=(make_finding(growth=5.0),))
    guard.record("t", result)
    back = guard.recover("t")
    assert back is not None and back.leaking and back.findings == result.findings
    assert back.attribution is not None and back.attribution.notes == (CRASH_NOTE,)
    assert guard.recover("t") is None  # read once
