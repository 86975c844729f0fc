"""The report at the scale of a whole suite: thinned series, a light index, the worst few flamegraphs.

A suite run under ``--leak-all`` can have hundreds of leaking tests with
thousands of readings each; the report must stay a size one can open and
archive, while every test's page still opens.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest
from conftest import chromium, make_check, make_evidence, make_finding, make_record, make_run, run_chromium

from leakcheck.attribution import (
    CAPTURE_NAME,
    FLAMEGRAPH_NAME,
    memray_unavailable_reason,
    open_window,
)
from leakcheck.errors import ConfigError
from leakcheck.report import capture_dir_for, rerender_report, safe_name, write_report
from leakcheck.report.files import MAX_POINTS, thin_series
from leakcheck.report.flames import parse_flamegraphs, severity, share_assets, shared_asset_links
from leakcheck.report.html import COMPACT_OVER
from leakcheck.results import Attribution, Series, load_results

MEASURES = (("py_blocks", "blocks", 2.0, 0.5), ("native_heap", "B", 300.0, 64.0), ("rss", "B", 900.0, 4096.0))
ITERATIONS = 2000


def _series(probe: str, unit: str, per: float, seed: int) -> Series:
    # A rising line with a deterministic wobble, as real readings are never straight.
    values = tuple(1e6 + per * i + ((i * 7919 + seed) % 13) * per for i in range(ITERATIONS + 1))
    return Series(probe, unit, tuple(range(ITERATIONS + 1)), values)


def _leaking_record(n: int):
    findings = tuple(
        make_finding(probe, growth=per * (1 + n % 7), limit=limit, evidence=make_evidence(per, iterations=ITERATIONS))
        for probe, _, per, limit in MEASURES
    )
    samples = tuple(_series(probe, unit, per, n) for probe, unit, per, _ in MEASURES)
    check = make_check(f"t{n}", findings=findings, samples=samples, iterations=ITERATIONS, duration=3.0)
    return make_record(f"tests/test_big.py::test_leak[{n:03d}]", check)


def _clean_record(n: int):
    findings = tuple(make_finding(probe, growth=0.0, limit=limit) for probe, _, _, limit in MEASURES)
    samples = tuple(_series(probe, unit, 0.0, n) for probe, unit, _, _ in MEASURES)
    check = make_check(f"c{n}", findings=findings, samples=samples, iterations=ITERATIONS)
    return make_record(f"tests/test_big.py::test_clean[{n:03d}]", check)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_report_of_200_leaking_tests_stays_small_and_opens_every_test(tmp_path: Path):
    records = [_leaking_record(n) for n in range(200)] + [_clean_record(n) for n in range(COMPACT_OVER)]
    run = make_run(*records)
    out = tmp_path / "report"
    index = write_report(run, out)

    results_size = (out / "results.json").stat().st_size
    index_size = index.stat().st_size
    # 300 tests x 3 measures x 2,001 readings are ~14 MB of JSON; thinned, ~10 KiB a test.
    assert results_size < 12_000 * len(records), results_size
    assert index_size < 1_500_000, index_size
    assert _size(out) < 30_000_000, _size(out)

    loaded = load_results(out / "results.json")
    by_id = {t.id: t for t in loaded.tests}
    html = index.read_text(encoding="utf-8")
    for record in records:
        kept = by_id[record.id]
        assert kept.outcome == record.outcome
        # The judged statistics are kept whole; only the readings are thinned.
        assert kept.result.findings == record.result.findings
        for before, after in zip(record.result.samples, kept.result.samples):
            assert len(after.values) <= MAX_POINTS
            assert after.iterations[0] == 0 and after.iterations[-1] == ITERATIONS
            assert after.values[-1] == before.values[-1]
        page = f"tests/{safe_name(record.id)}.html"
        assert f'href="{page}"' in html
        text = (out / page).read_text(encoding="utf-8")
        assert (out / page).stat().st_size < 60_000
        assert text.count("<svg") == len(MEASURES)
        assert record.id in text
    assert html.count('<tr class="leaking"') == 200
    assert html.count('<tr class="passed"') == COMPACT_OVER
    # Leaking rows keep their sparklines; clean ones are plain in an index this big.
    assert html.count('<svg class="spark"') == 200 * len(MEASURES)


def test_small_report_keeps_sparklines_for_clean_tests(tmp_path: Path):
    index = write_report(make_run(_leaking_record(1), _clean_record(1)), tmp_path / "r")
    assert index.read_text(encoding="utf-8").count('<svg class="spark"') == 2 * len(MEASURES)


def test_thin_series_keeps_ends_peaks_and_steps():
    values = [0.0] * 5000
    for i in range(3000, 5000):
        values[i] = 10.0  # a step
    values[1234] = 99.0  # a single spike
    values[4321] = -5.0  # a single dip
    series = Series("rss", "B", tuple(range(5000)), tuple(values))
    thin = thin_series(series, 200)
    assert len(thin.values) <= 200
    assert thin.iterations[0] == 0 and thin.iterations[-1] == 4999
    assert 99.0 in thin.values and -5.0 in thin.values
    assert list(thin.iterations) == sorted(thin.iterations)
    assert dict(zip(thin.iterations, thin.values))[4999] == 10.0
    short = Series("rss", "B", (0, 1, 2), (1.0, 2.0, 3.0))
    assert thin_series(short, 200) is short


def test_thin_series_with_nan_readings():
    values = tuple(float("nan") if i % 2 else float(i) for i in range(1000))
    thin = thin_series(Series("x", "B", tuple(range(1000)), values), 50)
    assert len(thin.values) <= 50
    assert thin.iterations[-1] == 999


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("20", 20), (" ALL ", None), (5, 5)])
def test_parse_flamegraphs(text, expected):
    assert parse_flamegraphs(text) == expected


@pytest.mark.parametrize("text", ["-1", "many", "2.5", ""])
def test_parse_flamegraphs_rejects_bad_values(text):
    with pytest.raises(ConfigError) as info:
        parse_flamegraphs(text)
    assert "--leak-flamegraphs" in str(info.value) and "'all'" in str(info.value)


def test_severity_ranks_by_growth_over_limit():
    worse = make_record("a", make_check(findings=(make_finding(growth=50.0, limit=1.0),)))
    milder = make_record("b", make_check(findings=(make_finding("native_heap", growth=4000.0, limit=1024.0),)))
    clean = make_record("c", make_check())
    assert severity(worse) > severity(milder) > severity(clean) == 0.0


BIG = "x" * 40_000


def _fake_flamegraph(data: str) -> str:
    return (
        "<!DOCTYPE html><html><head><style>" + "b{}" * 10_000 + "</style><style>small{}</style></head><body>"
        f'<script type="text/javascript">{BIG}</script>'
        f'<script type="text/javascript">const packed_data = {data}; {"y" * 20_000}</script>'
        '<script src="https://example.invalid/cdn.js"></script></body></html>'
    )


def test_share_assets_writes_each_library_once(tmp_path: Path):
    assets = tmp_path / "assets"
    pages = []
    for name in ("a", "b"):
        page = tmp_path / "tests" / name / "flamegraph.html"
        page.parent.mkdir(parents=True)
        page.write_text(_fake_flamegraph(f'{{"id": "{name}"}}'), encoding="utf-8")
        pages.append(page)
        saved = share_assets(page, assets)
        assert saved > 60_000
        assert share_assets(page, assets) == 0  # idempotent
    assert sorted(p.suffix for p in assets.iterdir()) == [".css", ".js"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert BIG not in text
        assert "packed_data" in text and "<style>small{}</style>" in text
        assert 'src="https://example.invalid/cdn.js"' in text
        links = shared_asset_links(page)
        assert len(links) == 2 and all(link.is_file() for link in links)
        assert any(link.read_text(encoding="utf-8") == BIG for link in links)


def _capture(folder: Path, per_iteration: int) -> None:
    """A real, deferred memray capture of a step that keeps ``per_iteration`` buffers each time."""
    keep = []
    window = open_window("memray", iterations=6, capture_dir=folder, flamegraph=True, defer_flamegraph=True)
    window.start()
    for i in range(1, 7):
        keep.extend(bytearray(2048) for _ in range(per_iteration))
        gc.collect()
        window.checkpoint(i)
    attribution = window.finish(6)
    assert attribution.flamegraph is None  # deferred: nothing rendered yet
    assert (folder / CAPTURE_NAME).is_file()
    assert not (folder / FLAMEGRAPH_NAME).exists()


@pytest.mark.skipif(memray_unavailable_reason() is not None, reason="memray is not available here")
def test_only_the_worst_leaking_tests_get_a_flamegraph(tmp_path: Path):
    out = tmp_path / "report"
    records = []
    for n, growth in ((1, 40.0), (2, 4.0)):
        test_id = f"tests/test_f.py::test_leak{n}"
        _capture(capture_dir_for(out, test_id), 4 * n)
        check = make_check(
            findings=(make_finding(growth=growth, limit=1.0),), attribution=Attribution(window_iterations=6)
        )
        records.append(make_record(test_id, check))
    write_report(make_run(*records), out, flamegraphs=1)

    worst, other = (capture_dir_for(out, r.id) for r in records)
    assert (worst / FLAMEGRAPH_NAME).is_file()
    assert not (other / FLAMEGRAPH_NAME).exists()
    assert (other / CAPTURE_NAME).is_file()  # kept, to make it later
    flame = worst / FLAMEGRAPH_NAME
    # memray's libraries live once in assets/; the page keeps its data and opens offline.
    assert flame.stat().st_size < 300_000, flame.stat().st_size
    links = shared_asset_links(flame)
    assert links and all(link.is_file() and link.parent == (out / "assets").resolve() for link in links)
    assert (
        "https://" not in re.sub(r"<(?:a|link)\b[^>]*>", "", flame.read_text(encoding="utf-8")).split("<script", 1)[0]
    )
    worst_page = (out / "tests" / f"{safe_name(records[0].id)}.html").read_text(encoding="utf-8")
    other_page = (out / "tests" / f"{safe_name(records[1].id)}.html").read_text(encoding="utf-8")
    assert "Open the memray flamegraph" in worst_page
    assert "Open the memray flamegraph" not in other_page
    assert "not among the 1 worst leaking tests" in other_page and "--flamegraphs all" in other_page

    index, notes = rerender_report(out, flamegraphs=None)
    assert notes == [f"{records[1].id}: flamegraph made from the kept capture"]
    assert (other / FLAMEGRAPH_NAME).is_file()
    other_page = (out / "tests" / f"{safe_name(records[1].id)}.html").read_text(encoding="utf-8")
    assert "Open the memray flamegraph" in other_page and "not among" not in other_page
    assert len(list((out / "assets").iterdir())) == len(links)  # the second page shares the same files
    assert index.is_file()


@pytest.mark.slow
@pytest.mark.skipif(memray_unavailable_reason() is not None, reason="memray is not available here")
def test_flamegraph_with_shared_assets_draws_in_headless_chromium(tmp_path: Path):
    if chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = tmp_path / "report"
    test_id = "tests/test_f.py::test_leak"
    _capture(capture_dir_for(out, test_id), 8)
    check = make_check(findings=(make_finding(growth=8.0, limit=1.0),), attribution=Attribution(window_iterations=6))
    write_report(make_run(make_record(test_id, check)), out)
    flame = capture_dir_for(out, test_id) / FLAMEGRAPH_NAME
    assert shared_asset_links(flame)
    dom = run_chromium(["--virtual-time-budget=5000", "--dump-dom", flame.resolve().as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # d3-flamegraph draws its frames as SVG groups into #chart only when every shared script loaded.
    chart = dom.stdout.split('id="chart"', 1)[1]
    assert "<svg" in chart and "<rect" in chart, dom.stdout[-3000:]
