"""Every mistake answered at once: exit 2, one line naming the value and the fix, no traceback, "
"nothing left in the temp dir."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
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
    (work / "test_plain.py").write_text("def test_plain():\n    pass\n")
    (work / "broken.py").write_text("import no_such_module_i14\n\ndef step():\n    pass\n")
    (tmp_path / "tmp").mkdir()
    return work


def leakcheck_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(folder.parent / "tmp")}
    return subprocess.run(
        [sys.executable, "-m", "leakcheck", *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )


def _tripwire_valgrind(folder: Path) -> Path:
    """A stand-in for valgrind that only records that it was started: a bad target must not get that far."""
    fake = folder.parent / "tripwire-valgrind"
    fake.write_text(f"#!{sys.executable}\nopen({str(folder.parent / 'valgrind-started')!r}, 'w').close()\n")
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("valgrind", "nope.py::test_x", "5"), "no such file 'nope.py'"),
        (
            ("valgrind", "test_quick.py::test_nope"),
            "test_quick.py has no test 'test_nope'; did you mean `test_quick.py::test_ok`?",
        ),
        (("valgrind", "test_plain.py::test_plain"), "it is not a leak test: only tests marked @pytest.mark.leak"),
        (("valgrind", "native.py:nofunc"), "has no attribute 'nofunc'; it defines: step"),
        (("valgrind", "native:stp"), "'native' has no attribute 'stp'; did you mean `step`?"),
        (("valgrind", "broken.py:step"), "No module named 'no_such_module_i14'; install 'no_such_module_i14'"),
        (("valgrind", "native.py:step", "0"), "argument iterations: must be >= 1, got 0"),
        (("valgrind", "native.py:step", "--kep"), "did you mean --keep?"),
        (("flamegraph", "cap.bin", "-o", "/proc/nope/out.html"), "cap.bin: no such memray capture file; pass a"),
        (
            ("check", "steps.py:clean", "--report", "/proc/nope"),
            "--report='/proc/nope': the report directory cannot be written",
        ),
        (("check", "steps.py:clean", "--leak-iteratons=3"), "did you mean --leak-iterations?"),
        (("check", "steps.py:clean", "--leak-attribution=memry"), "did you mean `memray`?"),
        (("check", "steps.py:clean", "--setup", "steps:nofunc"), "setup='steps:nofunc' (--setup)"),
        (("check", "nosuchmodule:clean"), "run from the folder that holds it, or name the file"),
        (("compare", "nope.json", "nope.json"), "nope.json: no such file; pass the results.json"),
        (("run",), "no scenarios/ folder in"),
        (("run", "-n", "2", "-q"), "no scenarios/ folder in"),
    ],
    ids=[
        "valgrind-no-file",
        "valgrind-no-test",
        "valgrind-not-a-leak-test",
        "valgrind-no-function",
        "valgrind-module-form",
        "valgrind-import-error",
        "valgrind-zero-iterations",
        "valgrind-bad-option",
        "flamegraph-no-capture",
        "check-report",
        "check-bad-option",
        "check-bad-value",
        "check-setup",
        "check-module",
        "compare-no-file",
        "run",
        "run-options-first",
    ],
)
def test_bad_input_gets_exit_2_and_one_line(folder: Path, args: tuple[str, ...], message: str) -> None:
    if args[0] == "valgrind":
        args = (*args, "--valgrind", str(_tripwire_valgrind(folder)))
    proc = leakcheck_cli(folder, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list((folder.parent / "tmp").iterdir()) == []
    # Answered before valgrind starts, which takes tens of seconds to start CPython.
    assert not (folder.parent / "valgrind-started").exists()


def test_a_good_target_does_reach_valgrind(folder: Path) -> None:
    """The look-alike: the tripwire does fire for a target that loads (and, lacking XML, the run has no verdict)."""
    proc = leakcheck_cli(folder, "valgrind", "native.py:step", "1", "--valgrind", str(_tripwire_valgrind(folder)))
    assert proc.returncode == 3 and (folder.parent / "valgrind-started").exists(), proc.stdout + proc.stderr
    assert list((folder.parent / "tmp").iterdir()) == []


def test_a_step_that_raises_says_where_without_a_traceback(folder: Path) -> None:
    (folder / "raiser.py").write_text("def boom():\n    raise RuntimeError('kaput')\n")
    proc = leakcheck_cli(folder, "check", "raiser.py:boom")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "RuntimeError: kaput (at " in proc.stderr and "raiser.py:2); fix the step" in proc.stderr


def test_compare_takes_a_report_folder(folder: Path) -> None:
    """The look-alike of compare-no-file: a report folder stands for its results.json."""
    write_report(make_run(_leaking("a")), folder / "rep")  # type: ignore[arg-type]
    proc = leakcheck_cli(folder, "compare", "rep", "rep/results.json")
    assert proc.returncode == 0, proc.stderr
    assert "1 still leaking (known)" in proc.stdout


def test_run_passes_options_first_to_pytest(folder: Path) -> None:
    """The look-alike of run-options-first: with a path, options before it reach pytest."""
    proc = leakcheck_cli(folder, "run", "-p", "no:randomly", "-q", "test_quick.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-m leak -p no:randomly -q test_quick.py" in proc.stderr and "1 passed" in proc.stdout


@pytest.mark.parametrize(
    ("args", "paths"),
    [
        (["-n", "2", "-k", "foo"], []),
        (["--leak-report", "rep", "tests/"], ["tests/"]),
        (["--leak-all", "x.py", "--leak-iterations=3", "-p", "no:x"], ["x.py"]),
    ],
)
def test_run_tells_paths_from_option_values(args: list[str], paths: list[str]) -> None:
    from leakcheck.cli.run import _paths

    assert _paths(args) == paths


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_an_interrupted_valgrind_run_leaves_nothing(folder: Path, signame: str) -> None:
    """Ctrl-C or SIGTERM mid-run: the children (in sessions of their own) are stopped, the temp folder removed."""
    from test_valgrind_xml import write_fake_valgrind

    fake = write_fake_valgrind(folder.parent)
    tmp = folder.parent / "tmp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "FAKE_VALGRIND_MODE": "sleep"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "leakcheck", "valgrind", "native.py:step", "2", "--valgrind", str(fake)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not [p for p in tmp.glob("leakcheck-valgrind-*/memcheck-*.log") if p.read_text()] and proc.poll() is None:
            time.sleep(0.05)  # until a fake valgrind has written its first line
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if signame == "SIGINT" else 143), err
    assert "Traceback" not in err and (err.strip() == "leakcheck valgrind: interrupted" or signame == "SIGTERM")
    assert list(tmp.iterdir()) == []
    assert not _running(str(fake))


def _running(needle: str) -> list[int]:
    """Processes whose command line mentions ``needle``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_text().replace("\0", " "):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


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
        "@pytest.mark.leak(iterations=50)\ndef test_fine():\n    pass\n\n"
        "@pytest.mark.leak(attribution='memry', probes=['rs'])\ndef test_three():\n    pass\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*leakcheck: 5 bad leak markers:*",
            (
                "*iteratons=300 (leak marker on test_a.py::test_one): unknown keyword of the leak "
                "marker; did you mean `iterations`?*"
            ),
            "*warmup='lots' (leak marker on test_b.py::test_two): expected a whole number*",
            "*grace=-1.0 (leak marker on test_b.py::test_two): expected seconds >= 0*",
            "*attribution='memry' (leak marker on test_b.py::test_three): did you mean `memray`? expected one of*",
            "*probes='rs' (leak marker on test_b.py::test_three): unknown probe; did you mean `rss`? known probes*",
        ]
    )


def test_a_keyword_with_no_near_name_gets_no_suggestion(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.leak(colour='red', attribution='fast')\ndef test_one():\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*colour='red'*unknown keyword*", "*attribution='fast'*expected one of*"])
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


def test_readme_lists_every_exit_status() -> None:
    """leakcheck's own statuses in the table, and pytest's 2-5 in the paragraph after it."""
    from leakcheck import exit_codes
    from leakcheck.cli import INTERRUPTED

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Exit status of every `leakcheck` command") :]
    section = section[: section.index("\n## ")]
    for code in (*(getattr(exit_codes, name) for name in exit_codes.__all__), INTERRUPTED):
        assert f"\n| {code} | " in section, code
    pytest_part = section[section.index("`leakcheck run` and `pytest` itself") :]
    for code, what in [(2, "interrupted"), (3, "internal error"), (4, "usage error"), (5, "no tests collected")]:
        assert f"{code} {what}" in " ".join(pytest_part.split()), (code, what)
