"""The per-test page says why it leaks; the index fits a 1400 px window; charts read right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import chromium, make_check, make_evidence, make_finding, make_record, make_run, make_series, run_chromium

from leakcheck.report import write_report
from leakcheck.report.html import render_test_page, safe_name
from leakcheck.report.svg import chart
from leakcheck.results import (
    AllocationSite,
    Attribution,
    GrowingType,
    LeakedHandle,
    ReferrerChain,
    Retention,
    Series,
    group_handles,
)

STACK = '  File "app.py", line 41, in start_poller\n    threading.Thread(target=poll, name="poller").start()\n'
TEST_ID = "tests/test_app.py::test_poller_per_call[sqlite-async]"


def _leaking_record():
    handles = group_handles(
        [
            LeakedHandle(
                "thread", f"'poller' (Thread, daemon=True, target=poll) #{i}", STACK, origin="app.py:41 in start_poller"
            )
            for i in range(470)
        ]
    )
    sites = (
        AllocationSite(
            "tracemalloc", "app.py:50", ("app.py:50: conn = open_db()",), 2048.0, 3.0, 1.0, via="aiosqlite/core.py:63"
        ),
        AllocationSite(
            "memray", "app.py:50 in open_db", ("app.py:50 in open_db", "app.py:50 in open_db"), 4096.0, 4.0, 1.0
        ),
    )
    retention = Retention(
        types=(GrowingType("app.User", 1.0),),
        chains=(ReferrerChain("module global", ("app._USERS (dict)", "[17]", "app.User")),),
        seconds=0.12,
    )
    result = make_check(
        TEST_ID,
        findings=(make_finding("threads", 1.0, 0.02, evidence=make_evidence(1.0)),),
        handles=handles,
        attribution=Attribution(sites=sites, window_iterations=50, retention=retention),
    )
    message = "[gw1] linux -- Python 3.11.7 /venv/bin/python\n" + str(result)
    return make_record(TEST_ID, result, "leaking", message, worker="gw1")


def test_page_shows_one_entry_per_kind_the_chain_and_each_site_once():
    record = _leaking_record()
    assert record.result is not None and len(record.result.handles) == 1
    page = render_test_page(record, None)
    assert page.count("&#x27;poller&#x27;") + page.count("'poller'") >= 1
    assert "<b>470 \u00d7</b>" in page and "started at" in page and "app.py:41 in start_poller" in page
    assert page.count("#1</span>") == 0 and "#469" not in page  # not 470 items
    assert "app._USERS (dict) \u2192 [17] \u2192 app.User" in page and "module global" in page
    assert "app.User +1.00/iteration" in page
    # app.py:50 seen by both tools: one row, both labels, the library it went through.
    assert page.count('<span class="id">app.py:50') == 1
    assert "tracemalloc: Python allocations, memray: native and Python" in page
    assert "aiosqlite/core.py:63" in page
    assert "[gw1] linux -- Python" not in page


def test_flat_zero_axis_starts_at_zero_and_native_labels_differ():
    flat = chart(Series("fds", "fds", tuple(range(60)), (0.0,) * 60), make_finding("fds", 0.0, 0.0))
    labels = re.findall(r'text-anchor="end">([^<]*)<', flat)[:3]
    assert labels[-1] in ("0", "0.0") and not any(label.startswith("-") for label in labels), labels
    heap = chart(
        Series("native_heap", "B", tuple(range(60)), tuple(12.3 * 2**20 + 50.0 * i for i in range(60))),
        make_finding("native_heap", 50.0, 32.0, evidence=make_evidence(50.0)),
    )
    labels = re.findall(r'text-anchor="end">([^<]*)<', heap)[:3]
    assert len(set(labels)) == 3, labels


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_index_with_every_measure_fits_1400_px(tmp_path: Path):
    probes = [
        "py_blocks",
        "py_traced",
        "native_heap",
        "rss",
        "uss",
        "fds",
        "threads",
        "os_threads",
        "tasks",
        "children",
        "files",
    ]
    findings = tuple(
        make_finding(
            p,
            1.0,
            0.5,
            evidence=make_evidence(1.0),
            unit="B" if p in ("native_heap", "rss", "uss", "py_traced") else "n",
        )
        for p in probes
    )
    samples = tuple(make_series(p, "n", 1.0) for p in probes)
    long_id = "tests/integration/test_things3_sync_roundtrip.py::test_roundtrip_many_rows[aiosqlite-wal-shared-cache]"
    run = make_run(make_record(long_id, make_check(long_id, findings=findings, samples=samples), "leaking", "grew"))
    out = tmp_path / "report"
    write_report(run, out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "::<wbr>" in index and "/<wbr>" in index and "<wbr>[" in index
    # Measure the laid-out page in a copy with a probe script (the report itself has none).
    probe = out / "probe.html"
    probe.write_text(
        index.replace(
            "</body>",
            "<script>document.body.setAttribute('data-scroll', document.documentElement.scrollWidth)</script></body>",
        ),
        encoding="utf-8",
    )
    dom = run_chromium(["--window-size=1400,900", "--dump-dom", probe.resolve().as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'data-scroll="(\d+)"', dom.stdout)
    assert match is not None, dom.stdout[:500]
    assert int(match.group(1)) <= 1400, f"the index needs {match.group(1)} px: a measure is behind a scroll"
    assert safe_name(long_id)  # the detail page exists under its safe name
