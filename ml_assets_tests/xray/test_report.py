"""The X-Ray record's figures, and its HTML report as a real browser shows it."""

import pytest

from ml_assets.xray.record import EVENTS, XRayRecord, load_records, record_dir
from ml_assets.xray.report import render_html
from ml_assets_tests.services import CHROMIUM_FLAGS


def a_record(outcome: str = "succeeded") -> XRayRecord:
    t0 = 1_790_000_000.0
    record = XRayRecord(
        run_id="0c0ffee0-1234-5678-9abc-def012345678",
        step="ranking_model",
        cluster="mla-ranking-model-0c0ffee0-ab12cd",
        mode="kuberay",
        profile="gpu-l4",
        cpus=17,
        memory_gib=68,
        gpus=2,
        gpu_type="nvidia-l4",
        outcome=outcome,
    )
    for offset, event in zip((0, 1, 31, 33, 35, 40, 1840, 1845), EVENTS, strict=True):
        record.mark(event, t0 + offset)
    record.samples = [
        {
            "t": t0 + 33 + s,
            "node": "head",
            "process": process,
            "cpu_percent": 50.0 + s % 7,
            "rss_mib": 900.0 + s,
        }  # fmt: skip
        for s in range(0, 1800, 30)
        for process in ("node", "train-worker-41")
    ]
    record.epochs = [
        {
            "epoch": e,
            "samples": 1e6,
            "samples_per_second": 9000.0 + e,
            "curve": [[s * 1e5, 0.6 - 0.01 * e - 0.001 * s] for s in range(10)],
        }  # fmt: skip
        for e in range(3)
    ]
    record.logs = {"head/raylet.out": "raylet started\nall good", "head/worker-1.err": "<oops>"}
    return record


def test_cost_and_gpu_hours_follow_the_timeline_and_price_table():
    record = a_record()
    assert record.cluster_hours == pytest.approx(1844 / 3600)
    assert record.gpu_hours == pytest.approx(2 * 1844 / 3600)
    expected = (17 * 0.04 + 68 * 0.005 + 2 * 0.80) * 1844 / 3600
    assert record.estimated_cost_usd == pytest.approx(expected)
    assert record.durations()["created->ready"] == 30
    assert record.summary()["mean_samples_per_second"] == pytest.approx(9001.0)


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown X-Ray event 'booted'"):
        a_record().mark("booted")


def test_records_round_trip_and_are_found_by_run_id_prefix(tmp_path):
    record = a_record()
    record.save(record_dir(tmp_path, record.run_id, record.step))
    (loaded,) = load_records(tmp_path, record.run_id[:8])
    assert loaded == record
    with pytest.raises(LookupError, match="no X-Ray record for run 'feedbeef'"):
        load_records(tmp_path, "feedbeef")


def test_the_html_report_opens_from_disk_and_shows_the_record(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    record = a_record(outcome="failed")
    record.error = "RuntimeError: loss is NaN"
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(record))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(page_file.as_uri())
        assert page.title() == "X-Ray ranking_model 0c0ffee0"
        assert page.locator("#outcome").inner_text() == "failed"
        assert page.locator("#run-id").inner_text() == record.run_id
        rows = page.locator("#timeline tr")
        assert rows.count() == 1 + len(EVENTS)
        assert rows.nth(3).inner_text().split("\t")[0] == "ready"
        assert "+31.00 s" in rows.nth(3).inner_text()
        assert "estimated_cost_usd" in page.locator("#summary").inner_text()
        images = page.locator("img")
        assert images.count() == 3  # utilization, throughput, loss curve
        widths = images.evaluate_all("(imgs) => imgs.map(i => i.complete && i.naturalWidth)")
        assert all(width > 300 for width in widths)
        assert "loss is NaN" in page.inner_text("body")
        log = page.locator("details", has_text="head/worker-1.err")
        assert not log.locator("pre").is_visible()  # collapsed until asked for
        log.locator("summary").click()
        assert log.locator("pre").inner_text() == "<oops>"  # escaped, shown as text
        page.screenshot(path=str(tmp_path / "xray-report.png"), full_page=True)
        browser.close()
    # Self-contained: the page asked for nothing but itself.
    assert requests == [page_file.as_uri()]
    assert (tmp_path / "xray-report.png").stat().st_size > 10_000
