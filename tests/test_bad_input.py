"""Every mistake answered at once: exit 2, one line naming the value and the fix, no traceback, "
"nothing left in the temp dir."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_check, make_finding, make_record, make_run

import leakcheck
from leakcheck.compare import compare, format_markdown, format_text
from leakcheck.errors import ConfigError
from leakcheck.exit_codes import FOUND, OK
from leakcheck.report import write_report
from leakcheck.targets import load_callable

ROOT = Path(__file__).resolve().parent.parent

STEPS = "_keep = []\n\ndef leaky():\n    _keep.append(bytearray(4096))\n\ndef clean():\n    x = [1, 2, 3]\n"
QUICK_TEST = "import pytest\n\n@pytest.mark.leak\ndef test_ok():\n    pass\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A user's folder with steps.py, native.py and test_quick.py, and an empty temp dir beside it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "steps.py").write_text(STEPS)
    (work / "native.py").write_text("def step():\n    pass\n")
    (work / "test_quick.py").write_text(QUICK_TEST)
    (tmp_path / "tmp").mkdir()
    return work


def leakcheck_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(folder.parent / "tmp")}
    return subprocess.run(
        [sys.executable, "-m", "leakcheck", *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )


def _needs_valgrind(args: tuple[str, ...]) -> None:
    if args[0] == "valgrind" and shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("valgrind", "nope.py::test_x", "5"), "no such file 'nope.py'"),
        (("valgrind", "test_quick.py::test_nope"), "pytest cannot collect it: ERROR: not found"),
        (("valgrind", "native.py:nofunc"), "has no attribute 'nofunc'"),
        (("flamegraph", "cap.bin", "-o", "/proc/nope/out.html"), "cap.bin"),
        (
            ("check", "steps.py:clean", "--report", "/proc/nope"),
            "--report='/proc/nope': the report directory cannot be written",
        ),
        (("run",), "no scenarios/ folder in"),
        (("check", "nosuchmodule:clean"), "run from the folder that holds it, or name the file"),
    ],
    ids=[
        "valgrind-no-file",
        "valgrind-no-test",
        "valgrind-no-function",
        "flamegraph-out",
        "check-report",
        "run",
        "check-module",
    ],
)
def test_bad_input_gets_exit_2_and_one_line(folder: Path, args: tuple[str, ...], message: str) -> None:
    _needs_valgrind(args)
    proc = leakcheck_cli(folder, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list((folder.parent / "tmp").iterdir()) == []


def test_flamegraph_to_an_unwritable_place_is_one_line(folder: Path) -> None:
    pytest.importorskip("memray")
    (folder / "cap.bin").write_bytes(b"not a capture")
    proc = leakcheck_cli(folder, "flamegraph", "cap.bin", "-o", "/proc/nope/out.html")
    assert proc.returncode == 2, proc.stderr
    assert "/proc/nope/out.html: cannot write the flamegraph" in proc.stderr and "give -o a path" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version(folder: Path) -> None:
    proc = leakcheck_cli(folder, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"leakcheck {leakcheck.__version__}"


def test_module_form_is_found_in_the_working_folder_and_its_report_is_not_left_behind(folder: Path) -> None:
    clean = leakcheck_cli(folder, "check", "steps:clean", "--leak-iterations=20")
    assert clean.returncode == 0, clean.stderr
    leaky = leakcheck_cli(folder, "check", "steps.py:leaky", "--report", "rep", "--leak-attribution=tracemalloc")
    assert leaky.returncode == 1, leaky.stderr
    assert "left behind" not in leaky.stdout and "files 0 files" in leaky.stdout
    assert (folder / "rep" / "index.html").is_file()
    assert list((folder.parent / "tmp").iterdir()) == []


def test_files_the_step_leaves_are_still_found_beside_a_report(tmp_path: Path) -> None:
    """The look-alike: excluding the report folder must not hide the step's own files."""
    n = [0]

    def litter() -> None:
        n[0] += 1
        (tmp_path / f"litter-{n[0]}.txt").write_text("x")

    result = leakcheck.check(litter, iterations=20, warmup=2, attribution="off", grace=0, report=tmp_path / "rep")
    assert any(h.kind == "file" and "litter-" in h.description for h in result.handles)
    assert not any("rep" in Path(h.description).parts for h in result.handles if h.kind == "file")


def test_load_callable_module_form_from_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mysteps_i14.py").write_text("def go():\n    return 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mysteps_i14", raising=False)
    assert load_callable("mysteps_i14:go")() == 7
    with pytest.raises(ConfigError, match="name the file: path/to/nothere_i14.py:go"):
        load_callable("nothere_i14:go")


def test_all_bad_markers_of_a_session_are_reported_together(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_a="import pytest\n\n@pytest.mark.leak(iteratons=300)\ndef test_one():\n    pass\n",
        test_b="import pytest\n\n@pytest.mark.leak(warmup='lots', grace=-1)\ndef test_two():\n    pass\n\n"
        "@pytest.mark.leak(iterations=50)\ndef test_fine():\n    pass\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*leakcheck: 3 bad leak markers:*",
            (
                "*iteratons=300 (leak marker on test_a.py::test_one): unknown keyword of the leak "
                "marker; did you mean `iterations`?*"
            ),
            "*warmup='lots' (leak marker on test_b.py::test_two): expected a whole number*",
            "*grace=-1.0 (leak marker on test_b.py::test_two): expected seconds >= 0*",
        ]
    )


def test_a_keyword_with_no_near_name_gets_no_suggestion(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.leak(colour='red')\ndef test_one():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: leakcheck: colour='red'*unknown keyword*"])
    assert "did you mean" not in result.stderr.str()


def _leaking(name: str) -> object:
    return make_record(name, make_check(name, findings=(make_finding(growth=5.0),)))


def _clean(name: str) -> object:
    return make_record(name, make_check(name))


def test_compare_lists_known_leaks_and_does_not_fail_on_them() -> None:
    base = make_run(_leaking("a"), _leaking("b"), _clean("c"))  # type: ignore[arg-type]
    cur = make_run(_leaking("a"), _leaking("b"), _clean("c"))  # type: ignore[arg-type]
    c = compare(base, cur)
    assert [t.id for t in c.known_leaks] == ["a", "b"]
    assert c.exit_status() == OK
    text = format_text(c)
    assert "STILL LEAKING (known) a" in text
    assert "OK: 0 regressed, 0 improved, 2 still leaking (known), 1 unchanged" in text
    md = format_markdown(c)
    assert "2 still leaking (known), 1 unchanged" in md and ":warning: still leaking (known)" in md


def test_compare_a_new_leak_is_still_a_regression() -> None:
    """The look-alike: leaking now but clean before is not a known leak."""
    c = compare(make_run(_clean("a")), make_run(_leaking("a")))  # type: ignore[arg-type]
    assert c.known_leaks == () and c.exit_status() == FOUND
    assert "0 still leaking (known)" in format_text(c)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_report_files_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        write_report(make_run(_leaking("a")), tmp_path / "rep")  # type: ignore[arg-type]
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "rep").rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}
