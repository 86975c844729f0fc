"""The HTML report and results.json: content, schema, escaping, atomic writes, a real browser."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing
from pathlib import Path

import jsonschema
import pytest
from conftest import chromium, make_check, make_evidence, make_finding, make_record, make_run, make_series, run_chromium

import leakcheck.results as results_module
from leakcheck.cli import run_command
from leakcheck.cli.flamegraph import FlamegraphCommand
from leakcheck.cli.report import ReportCommand
from leakcheck.errors import ConfigError
from leakcheck.report import (
    capture_dir_for,
    ensure_writable_report_dir,
    safe_name,
    write_report,
)
from leakcheck.results import (
    AllocationSite,
    Attribution,
    CheckResult,
    Evidence,
    Finding,
    LeakedHandle,
    RunResults,
    Series,
    TestRecord,
    UnclosedResource,
    Verdict,
    load_results,
)

SCHEMA_PATH = Path(results_module.__file__).parent / "data" / "results.schema.json"
EVIL_ID = "tests/test_x.py::test_<script>alert(1)</script>[a&b]"


def make_results(flamegraph: str | None = None) -> RunResults:
    leaking = make_check(
        "tests/test_pool.py::test_acquire_leaks",
        iterations=60,
        warmup=10,
        findings=(
            make_finding("py_blocks", 1.0, 0.2, evidence=make_evidence(1.0)),
            make_finding("native_heap", 1536.0, 256.0, evidence=make_evidence(1536.0)),
            make_finding("fds", 0.0, 0.0, evidence=make_evidence(0.0)),
            make_finding("rss", 0.0, 4096.0, Verdict.UNAVAILABLE, note="no /proc here"),
        ),
        samples=(
            make_series("py_blocks", "blocks", 1.0),
            make_series("native_heap", "B", 1536.0, base=5e6),
            make_series("fds", "fds", 0.0, base=12),
        ),
        handles=(
            LeakedHandle("fd", "/tmp/things.db-wal"),
            LeakedHandle("thread", "aiosqlite-worker-3", '  File "pool.py", line 40, in acquire\n'),
            LeakedHandle("task", "<coroutine Pool._reaper()>", '  File "pool.py", line 88\n'),
            LeakedHandle("child", "sqlite3 /tmp/x.db .dump"),
        ),
        attribution=Attribution(
            sites=(
                AllocationSite(
                    "memray",
                    "scenarios/pool.py:88 in acquire",
                    (
                        "scenarios/pool.py:88 in acquire: conn = sqlite3.connect(path)",
                        "[native] sqlite3MallocZero",
                    ),
                    15000.0,
                    113.0,
                    1.0,
                ),
                AllocationSite(
                    "tracemalloc",
                    "scenarios/pool.py:88",
                    ("scenarios/pool.py:88: conn = sqlite3.connect(path)",),
                    1024.0,
                    10.8,
                    0.98,
                ),
            ),
            notes=("attributed over a 40-iteration window",),
            flamegraph=flamegraph,
            window_iterations=40,
        ),
        duration=3.25,
    )
    clean = make_check(
        "tests/test_cache.py::test_cache_is_bounded",
        iterations=60,
        warmup=10,
        findings=(
            make_finding("py_blocks", 0.0, 0.2, evidence=make_evidence(0.0)),
            make_finding("native_heap", 12.0, 256.0, Verdict.INCONCLUSIVE),
        ),
        samples=(make_series("py_blocks", "blocks", 0.0), make_series("native_heap", "B", 0.0)),
        duration=1.5,
    )
    return make_run(
        make_record("aaa/test_first_by_name.py::test_clean", clean),
        make_record(EVIL_ID, dataclasses.replace(clean, name=EVIL_ID)),
        make_record("tests/test_skip.py::test_skipped", None, "skipped", "no memray here"),
        make_record(
            "tests/test_pool.py::test_acquire_leaks",
            leaking,
            "leaking",
            "python heap grew",
            worker="gw1",
            extra={"valgrind": {"definitely_lost": 0}},
        ),
        make_record("tests/test_err.py::test_boom", None, "error", "ScenarioError: the step raised"),
        created="2026-05-09T07:35:25+00:00",
        environment={"leakcheck": "0.1.0", "python": "3.11.7"},
    )


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out = tmp_path / "report"
    flame = capture_dir_for(out, "tests/test_pool.py::test_acquire_leaks") / "flamegraph.html"
    flame.parent.mkdir(parents=True)
    flame.write_text("<html><body>memray flamegraph</body></html>", encoding="utf-8")
    index = write_report(make_results(flamegraph=str(flame)), out)  # absolute: made relative
    assert index == out.resolve() / "index.html"
    return out


def test_report_files_and_schema(report: Path):
    names = _files(report)
    pool = safe_name("tests/test_pool.py::test_acquire_leaks")
    assert {
        "index.html",
        "results.json",
        f"tests/{pool}.html",
        f"tests/{pool}/flamegraph.html",
    } <= names
    assert len([n for n in names if n.startswith("tests/") and n.endswith(".html")]) == 6
    assert not [n for n in names if n.endswith(".tmp") or "/." in "/" + n]  # atomic: no temp files
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    loaded = load_results(report / "results.json")
    leaking = next(t for t in loaded.tests if t.outcome == "leaking")
    assert leaking.result is not None and leaking.result.attribution is not None
    assert leaking.result.attribution.flamegraph == f"tests/{pool}/flamegraph.html"


def test_schema_rejects_what_to_dict_cannot_write():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    data = make_results().to_dict()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(data)
    bad = json.loads(json.dumps(data))
    bad["tests"][0]["outcome"] = "exploded"
    assert not validator.is_valid(bad)
    bad = json.loads(json.dumps(data))
    bad["tests"][0]["result"]["surprise"] = 1
    assert not validator.is_valid(bad)


@pytest.mark.parametrize(
    ("cls", "ref"),
    [
        (RunResults, None),
        (CheckResult, "check"),
        (Finding, "finding"),
        (Evidence, "evidence"),
        (Series, "series"),
        (LeakedHandle, "handle"),
        (AllocationSite, "site"),
        (Attribution, "attribution"),
        (UnclosedResource, "unclosed"),
        (results_module.Retention, "retention"),
        (results_module.ReferrerChain, "chain"),
        (results_module.GrowingType, "growing_type"),
        (TestRecord, "test"),
    ],
)
def test_schema_lists_exactly_the_dataclass_fields(cls: type, ref: str | None):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    node = schema if ref is None else schema["$defs"][ref]
    fields = {f.name for f in dataclasses.fields(cls)}
    if cls is RunResults:
        fields |= {"schema"}
    assert set(node["properties"]) == fields, "update results.schema.json with the result types"
    assert set(node["required"]) == fields
    assert typing.get_type_hints  # keep the import honest


def test_index_orders_failing_first_and_escapes(report: Path):
    text = (report / "index.html").read_text(encoding="utf-8").replace("<wbr>", "")
    order = [
        text.index(name)
        for name in (
            "tests/test_pool.py::test_acquire_leaks",
            "tests/test_err.py::test_boom",
            "aaa/test_first_by_name.py::test_clean",
            "tests/test_skip.py::test_skipped",
        )
    ]
    assert order == sorted(order)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;[a&amp;b]" in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert text.count("<svg") >= 4
    assert "top site: scenarios/pool.py:88 in acquire" in text
    assert "1.5 KiB/iter" in text


def test_detail_page_lists_everything(report: Path):
    page = report / "tests" / f"{safe_name('tests/test_pool.py::test_acquire_leaks')}.html"
    text = page.read_text(encoding="utf-8")
    for expected in (
        "/tmp/things.db-wal",
        "aiosqlite-worker-3",
        "&lt;coroutine Pool._reaper()&gt;",
        "sqlite3 /tmp/x.db .dump",
        "Growing allocation sites",
        "tracemalloc: Python allocations",
        "memray: native and Python",
        "[native] sqlite3MallocZero",
        "../index.html",
        "definitely_lost",
        "no /proc here",
        "worker gw1",
    ):
        assert expected in text, expected
    flame = f'href="../tests/{safe_name("tests/test_pool.py::test_acquire_leaks")}/flamegraph.html"'
    assert flame in text
    assert text.count('<svg class="chart"') == 3
    evil = (report / "tests" / f"{safe_name(EVIL_ID)}.html").read_text(encoding="utf-8")
    assert "<script>" not in evil


def test_safe_name_is_unique_and_harmless():
    a, b = safe_name("t.py::test[a/b]"), safe_name("t.py::test[a_b]")
    assert a != b
    assert "/" not in a and ".." not in a
    assert safe_name("../../etc/passwd").startswith("etc_passwd-")


def test_report_dir_that_cannot_be_written(tmp_path: Path):
    afile = tmp_path / "file"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a directory"):
        ensure_writable_report_dir(afile)
    with pytest.raises(ConfigError, match="cannot be written"):
        ensure_writable_report_dir(afile / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="cannot be written"):
            ensure_writable_report_dir(locked)
    assert ensure_writable_report_dir(tmp_path / "new" / "dir").is_dir()
    assert _files(tmp_path / "new") == set()


def test_report_command_rerenders_and_makes_flamegraph_from_kept_capture(tmp_path: Path, capsys):
    import memray

    out = tmp_path / "r"
    write_report(make_results(), out)
    (out / "index.html").unlink()
    capture = capture_dir_for(out, "tests/test_pool.py::test_acquire_leaks") / "memray-leaks.bin"
    capture.parent.mkdir(parents=True, exist_ok=True)
    with memray.Tracker(capture, file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
        kept = [bytearray(1000) for _ in range(10)]
    del kept
    parser = argparse.ArgumentParser()
    ReportCommand().prepare_parser(parser)
    assert run_command(ReportCommand(), parser.parse_args([str(out)])) == 0
    assert (out / "index.html").is_file()
    assert capture.with_name("flamegraph.html").is_file()
    loaded = load_results(out / "results.json")
    leaking = next(t for t in loaded.tests if t.outcome == "leaking")
    assert leaking.result.attribution.flamegraph.endswith("/flamegraph.html")
    assert str(out / "index.html") in capsys.readouterr().out
    # And the standalone command.
    parser = argparse.ArgumentParser()
    FlamegraphCommand().prepare_parser(parser)
    target = tmp_path / "fg.html"
    assert run_command(FlamegraphCommand(), parser.parse_args([str(capture), "-o", str(target)])) == 0
    assert target.is_file()


def test_report_command_errors_plainly(tmp_path: Path, capsys):
    parser = argparse.ArgumentParser()
    ReportCommand().prepare_parser(parser)
    assert run_command(ReportCommand(), parser.parse_args([str(tmp_path)])) == 2
    assert "results.json: no such file" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    FlamegraphCommand().prepare_parser(parser)
    assert run_command(FlamegraphCommand(), parser.parse_args([str(tmp_path / "none.bin")])) == 2
    assert "no such memray capture" in capsys.readouterr().err


# --- a real browser ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path):
    index = (report / "index.html").resolve()
    dom = run_chromium(["--dump-dom", index.as_uri()], tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('<tr class="') == 5
    assert html.index('<tr class="leaking"') < html.index('<tr class="passed"')
    assert html.count("<svg") >= 4 and "<polyline" in html
    assert "<script>alert" not in html
    shot = tmp_path / "shot.png"
    run = run_chromium(
        ["--screenshot=" + str(shot), "--window-size=1280,900", index.as_uri()],
        tmp_path / "profile2",
    )
    assert shot.is_file(), run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page compresses to a few KiB
    detail = report / "tests" / f"{safe_name('tests/test_pool.py::test_acquire_leaks')}.html"
    dom = run_chromium(["--dump-dom", detail.resolve().as_uri()], tmp_path / "profile3")
    assert dom.stdout.count('class="chart"') == 3
