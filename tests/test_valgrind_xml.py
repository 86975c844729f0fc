"""Fast tests of the valgrind engine: XML parsing, run comparison, reports, targets.

No valgrind needed: records are hand-written XML, and the end-to-end paths (crash,
timeout, clean-up) run against a fake ``valgrind`` executable that writes canned XML.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leakcheck.cli import main
from leakcheck.errors import ConfigError
from leakcheck.valgrind import (
    INSTALL_HINT,
    GrowingRecord,
    Target,
    TargetError,
    ValgrindNotFoundError,
    ValgrindReport,
    compare_runs,
    default_suppressions,
    parse_target,
    run_valgrind,
)
from leakcheck.valgrind.memcheck_xml import Frame, LossRecord, MemcheckRun, parse_memcheck_xml_text

REPO = Path(__file__).resolve().parent.parent

HEADER = """<?xml version="1.0"?>
<valgrindoutput>
<protocolversion>4</protocolversion>
<protocoltool>memcheck</protocoltool>
<pid>4242</pid>
<status><state>RUNNING</state><time>00:00:00:00.100 </time></status>
"""
FOOTER = """<status><state>FINISHED</state><time>00:00:00:05.000 </time></status>
</valgrindoutput>
"""


def frame_xml(fn: str | None, obj: str, file: str | None = None, line: int | None = None) -> str:
    parts = [f"<ip>0x{abs(hash((fn, obj))) % 0xFFFFFF:X}</ip>", f"<obj>{obj}</obj>"]
    if fn:
        parts.append(f"<fn>{fn}</fn>")
    if file:
        parts += ["<dir>/src</dir>", f"<file>{file}</file>", f"<line>{line}</line>"]
    return "<frame>" + "".join(parts) + "</frame>"


LIBPY = "/usr/lib/libpython3.11.so.1.0"
VGPRELOAD = "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so"
EXT = "/tmp/x/leaky.cpython-311-x86_64-linux-gnu.so"

EXT_STACK = [
    (("malloc", VGPRELOAD), {}),
    (("leaky_leak", EXT), {"file": "leaky.c", "line": 12}),
    (("cfunction_vectorcall_NOARGS", LIBPY), {"file": "methodobject.c", "line": 1}),
    (("_PyEval_EvalFrameDefault", LIBPY), {"file": "ceval.c", "line": 2}),
]
INTERP_STACK = [
    (("malloc", VGPRELOAD), {}),
    (("PyUnicode_New", LIBPY), {}),
    (("_PyEval_EvalFrameDefault", LIBPY), {}),
]
STARTUP_STACK = [
    (("malloc", VGPRELOAD), {}),
    (("leaky_init", EXT), {}),
    (("Py_InitializeFromConfig", LIBPY), {}),
]


def leak_xml(kind: str, nbytes: int, blocks: int, stack: list, supp: bool = False, indirect: int = 0) -> str:
    frames = "".join(frame_xml(*names, **extra) for names, extra in stack)
    total = nbytes + indirect  # valgrind's <leakedbytes> includes what the record owns
    split = f" ({nbytes:,} direct, {indirect:,} indirect)" if indirect else ""
    suppression = (
        "<suppression><sname>x</sname><skind>Memcheck:Leak</skind>"
        "<rawtext><![CDATA[{\n   x\n   Memcheck:Leak\n   fun:malloc\n}]]></rawtext></suppression>"
        if supp
        else ""
    )
    return (
        f"<error><unique>0x1</unique><tid>1</tid><kind>{kind}</kind>"
        f"<xwhat><text>{total:,}{split} bytes in {blocks} blocks are lost</text>"
        f"<leakedbytes>{total}</leakedbytes><leakedblocks>{blocks}</leakedblocks></xwhat>"
        f"<stack>{frames}</stack>{suppression}</error>\n"
    )


def issue_xml() -> str:
    return (
        "<error><unique>0x2</unique><tid>1</tid><kind>UninitCondition</kind>"
        "<what>Conditional jump or move depends on uninitialised value(s)</what>"
        f"<stack>{frame_xml('maybe_small_long', LIBPY, 'longobject.c', 71)}</stack></error>\n"
    )


def run_xml(n: int, *, complete: bool = True) -> str:
    """A memcheck document for a run of ``n`` iterations of a leaky extension."""
    body = [
        issue_xml(),
        leak_xml("Leak_DefinitelyLost", 16 * n + 16, n + 1, EXT_STACK, supp=True, indirect=240 * n),
        leak_xml("Leak_IndirectlyLost", 240 * n, n, EXT_STACK[:1] + EXT_STACK[1:2] * 2),
        leak_xml("Leak_PossiblyLost", 64, 1, EXT_STACK[:2]),  # one-off: same in N and 2N
        leak_xml("Leak_DefinitelyLost", 100 * n, n, INTERP_STACK),  # grows, interpreter only
        leak_xml("Leak_DefinitelyLost", 50 * n, n, STARTUP_STACK),  # start-up: ignored
    ]
    text = HEADER + "".join(body) + FOOTER
    return text if complete else text[: text.index("Leak_PossiblyLost")]


# --------------------------------------------------------------------------- parsing


def test_parse_reads_leak_records_issues_and_frames() -> None:
    run = parse_memcheck_xml_text(run_xml(10))
    assert run.complete and run.pid == 4242 and run.fatal_signal is None
    assert [r.kind for r in run.records] == [
        "Leak_DefinitelyLost",
        "Leak_IndirectlyLost",
        "Leak_PossiblyLost",
        "Leak_DefinitelyLost",
        "Leak_DefinitelyLost",
    ]
    first = run.records[0]
    assert (first.bytes, first.blocks, first.indirect_bytes) == (176, 11, 2400)
    assert first.frames[1] == Frame(
        ip=first.frames[1].ip, obj=EXT, fn="leaky_leak", dir="/src", file="leaky.c", line=12
    )
    assert str(first.frames[1]) == f"leaky_leak (leaky.c:12) [{Path(EXT).name}]"
    assert first.suppression is not None and "Memcheck:Leak" in first.suppression
    assert run.lost("Leak_IndirectlyLost") == 2400
    assert len(run.issues) == 1 and run.issues[0].kind == "UninitCondition"


def test_truncated_xml_is_incomplete_but_keeps_what_was_read() -> None:
    run = parse_memcheck_xml_text(run_xml(10, complete=False))
    assert not run.complete
    assert [r.kind for r in run.records] == ["Leak_DefinitelyLost", "Leak_IndirectlyLost"]


def test_fatal_signal_and_garbage() -> None:
    text = HEADER + "<fatal_signal><tid>1</tid><signo>11</signo><signame>SIGSEGV</signame>"
    text += "<stack></stack></fatal_signal>\n" + FOOTER
    assert parse_memcheck_xml_text(text).fatal_signal == "SIGSEGV"
    garbage = parse_memcheck_xml_text("not xml at all <<<")
    assert not garbage.complete and garbage.records == ()


def test_frame_without_symbols_is_keyed_by_object_not_address() -> None:
    a = Frame(ip="0x1", obj="/usr/lib/libffi.so.8")
    b = Frame(ip="0x2", obj="/usr/lib/libffi.so.8")
    assert a.key == b.key and str(a) == "??? [libffi.so.8]"


# --------------------------------------------------------------------------- comparing


def test_compare_keeps_only_records_that_grow_through_user_code() -> None:
    low, high = parse_memcheck_xml_text(run_xml(10)), parse_memcheck_xml_text(run_xml(20))
    records, dropped = compare_runs(low, high, 10)
    assert [(r.kind, r.per_iteration_bytes) for r in records] == [
        ("Leak_IndirectlyLost", 240.0),
        ("Leak_DefinitelyLost", 16.0),
    ]
    assert records[1].per_iteration_blocks == 1.0
    assert dropped == 1  # the interpreter-only record; start-up and one-off never count
    assert "leaky_leak (leaky.c:12)" in records[1].format()


def test_compare_focus_patterns_select_records() -> None:
    low, high = parse_memcheck_xml_text(run_xml(10)), parse_memcheck_xml_text(run_xml(20))
    only_interp, dropped = compare_runs(low, high, 10, focus=["PyUnicode_New"])
    assert [r.per_iteration_bytes for r in only_interp] == [100.0] and dropped == 2
    everything, dropped = compare_runs(low, high, 10, focus=["*"])
    assert len(everything) == 3 and dropped == 0
    by_object, _ = compare_runs(low, high, 10, focus=["leaky.cpython-*.so"])
    assert len(by_object) == 2


def test_a_stray_block_is_not_a_leak() -> None:
    one = LossRecord("Leak_DefinitelyLost", 64, 1, (Frame("0x1", EXT, "f"),))
    two = LossRecord("Leak_DefinitelyLost", 128, 2, (Frame("0x9", EXT, "f"),))
    low = MemcheckRun((one,), (), True)
    high = MemcheckRun((two,), (), True)
    assert compare_runs(low, high, 10) == ((), 0)
    assert len(compare_runs(low, high, 1)[0]) == 1


# --------------------------------------------------------------------------- reports


def test_report_str_and_dict() -> None:
    record = GrowingRecord(
        "Leak_DefinitelyLost",
        (Frame("0x1", VGPRELOAD, "malloc"), Frame("0x2", EXT, "leaky_leak", "/s", "leaky.c", 3)),
        bytes_n=160,
        bytes_2n=320,
        blocks_n=10,
        blocks_2n=20,
        iterations=10,
    )
    report = ValgrindReport(
        status="leaking",
        target="t.py:step",
        iterations=10,
        warmup=2,
        per_iteration_definite=16.0,
        records=(record,),
    )
    text = str(report)
    assert text.startswith("valgrind memcheck: LEAKING - t.py:step")
    assert "definitely lost 16 B/iteration" in text
    assert "by leaky_leak (leaky.c:3)" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "leaking" and data["records"][0]["per_iteration_bytes"] == 16.0
    crashed = ValgrindReport("crashed", "t.py:step", 10, 2, message="died", log_path="/x.log")
    assert "CRASHED" in str(crashed) and "log kept at /x.log" in str(crashed)
    assert not crashed.ok and ValgrindReport("clean", "t", 1, 0).ok


# --------------------------------------------------------------------------- targets


def test_parse_target(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    target = parse_target(f"{script}:step")
    assert target == Target("callable", f"{script.resolve()}:step")
    assert parse_target("tests/test_x.py::test_y[a:b]").kind == "pytest"
    assert parse_target("tests/test_x.py").kind == "pytest"
    with pytest.raises(TargetError, match="no such file"):
        parse_target(f"{tmp_path / 'missing.py'}:step")


def test_pytest_target_command_uses_repeat_mode() -> None:
    command = Target("pytest", "tests/test_x.py::test_y").command("py", 10, 2)
    assert command == [
        "py", "-m", "pytest", "tests/test_x.py::test_y", "-p", "no:cacheprovider", "-q",
        "--leak-mode=repeat", "--leak-iterations=10", "--leak-warmup=2",
    ]  # fmt: skip


def test_shipped_suppressions_exist() -> None:
    text = default_suppressions().read_text()
    assert text.count("{") == text.count("}") > 5 and "Memcheck:Leak" in text


# --------------------------------------------------------------------------- driver


def test_driver_calls_sync_and_async_functions(tmp_path: Path) -> None:
    out = tmp_path / "calls.txt"
    script = tmp_path / "target.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            def step():
                open({str(out)!r}, "a").write("s")
            async def astep():
                await asyncio.sleep(0)
                open({str(out)!r}, "a").write("a")
            def boom():
                raise RuntimeError("boom")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    driver = [sys.executable, "-m", "leakcheck.valgrind.driver"]
    for func in ("step", "astep"):
        subprocess.run([*driver, f"{script}:{func}", "3", "1"], env=env, check=True)
    assert out.read_text() == "ssssaaaa"
    failed = subprocess.run([*driver, f"{script}:boom", "1"], env=env, capture_output=True, text=True, check=False)
    assert failed.returncode == 4 and "RuntimeError: boom" in failed.stderr
    missing = subprocess.run([*driver, f"{script}:nope", "1"], env=env, capture_output=True, text=True, check=False)
    assert missing.returncode == 3 and "has no attribute 'nope'" in missing.stderr


# --------------------------------------------------------------------------- missing valgrind


def test_missing_valgrind_raises_with_install_hint(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    with pytest.raises(ValgrindNotFoundError, match="apt-get install valgrind") as info:
        run_valgrind(f"{script}:step", valgrind=str(tmp_path / "no-valgrind"))
    assert info.value.valgrind == str(tmp_path / "no-valgrind")
    assert INSTALL_HINT in str(info.value)


def test_missing_valgrind_command_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    assert main(["valgrind", f"{script}:step", "--valgrind", str(tmp_path / "nope")]) == 2
    assert "apt-get install valgrind" in capsys.readouterr().err


def test_script_without_valgrind_on_path_exits_2(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {"PATH": str(empty_bin), "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        ["/bin/bash", str(REPO / "scripts" / "valgrind.sh"), f"{script}:step", "3"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "valgrind is not available" in result.stderr and "apt-get install valgrind" in result.stderr
    usage = subprocess.run(["/bin/bash", str(REPO / "scripts" / "valgrind.sh")], env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_bad_arguments_raise(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    fake = write_fake_valgrind(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        run_valgrind(f"{script}:step", valgrind=str(fake), suppressions=[tmp_path / "x.supp"])
    with pytest.raises(ConfigError, match="iterations=0.*must be >= 1"):
        run_valgrind(f"{script}:step", valgrind=str(fake), iterations=0)


# --------------------------------------------------------------------------- fake valgrind


def write_fake_valgrind(tmp_path: Path) -> Path:
    """A stand-in for valgrind that writes this module's canned XML (mode from env)."""
    fake = tmp_path / "fake-valgrind"
    fake.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import os, sys, time
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_valgrind_xml import run_xml
            args = sys.argv[1:]
            xml = next(a.split("=", 1)[1] for a in args if a.startswith("--xml-file="))
            client = [a for a in args if not a.startswith("--")]
            n = int(client[4])
            mode = os.environ["FAKE_VALGRIND_MODE"]
            print("fake valgrind log line")
            if mode == "sleep":
                time.sleep(30)
            with open(xml, "w") as f:
                f.write(run_xml(n, complete=mode != "truncated"))
            sys.exit(7 if mode == "fail" else 0)
            """
        )
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize(
    ("mode", "status", "failed"),
    [
        ("leak", "leaking", False),
        ("truncated", "crashed", True),
        ("fail", "failed", True),
        ("sleep", "timeout", True),
    ],
)
def test_run_statuses_with_fake_valgrind(
    tmp_path: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    status: str,
    failed: bool,
) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    monkeypatch.setenv("FAKE_VALGRIND_MODE", mode)
    fake = str(write_fake_valgrind(tmp_path))
    report = run_valgrind(f"{script}:step", valgrind=fake, iterations=5, timeout=3)
    assert report.status == status, str(report)
    # Nothing is left in the temp dir on any path unless asked to keep it.
    assert list(private_tmp.iterdir()) == [] and report.log_path is None
    if failed:
        assert "fake valgrind log line" in str(report)  # the end of the log is quoted instead
        kept = run_valgrind(f"{script}:step", valgrind=fake, iterations=5, timeout=3, keep=True)
        assert kept.status == status
        assert kept.log_path is not None and Path(kept.log_path).is_file()
        assert kept.log_path in str(kept)
        assert len(list(private_tmp.iterdir())) == 1
    else:
        assert report.per_iteration_possible == 0.0
        assert report.memcheck_errors == 1


def test_keep_leaves_files_and_prints_their_directory(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "t.py"
    script.write_text("def step():\n    pass\n")
    monkeypatch.setenv("FAKE_VALGRIND_MODE", "leak")
    report = run_valgrind(f"{script}:step", valgrind=str(write_fake_valgrind(tmp_path)), iterations=5, keep=True)
    assert report.log_path is not None
    names = sorted(p.name for p in Path(report.log_path).iterdir())
    assert names == ["memcheck-10.log", "memcheck-10.xml", "memcheck-5.log", "memcheck-5.xml"]
    assert f"files kept in {report.log_path}" in str(report)
