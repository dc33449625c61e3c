"""The Dagster UI in a real browser: `dagster dev` (webserver + daemon) on 127.0.0.1 and Debian's
headless chromium through Playwright. A data scientist opens the asset graph, selects the daily
assets, launches one partition, and watches the run succeed. Screenshots go to
`test-artifacts/ui/` (ignored by git)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from ml_assets_tests.conftest import VENV_BIN, free_port, stop_process_group, wait_until_healthy
from ml_assets_tests.defs.test_definitions import ASSETS
from ml_assets_tests.services import CHROMIUM_FLAGS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
DAY = "2026-11-05"


@pytest.fixture
def dagster_dev(tmp_path, monkeypatch):
    """`dagster dev` with the project's workspace and local instance config; yields its URL."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path / "ml_home"))
    port = free_port()
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPO,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/server_info", process, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(process, timeout=30)
        log.close()


def test_launch_one_partition_from_the_asset_graph(chromium, dagster_dev):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        # Dagster's first-visit newsletter dialog can cover the page at any moment: dismiss it.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        page.goto(f"{dagster_dev}/locations/ml_assets/asset-groups/ads_ranking")
        for name in sorted(ASSETS):
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "asset_graph.png")

        page.get_by_text("raw_impressions", exact=True).first.click()
        page.get_by_text("ad_features", exact=True).first.click(modifiers=["Shift"])
        page.get_by_role("button", name="Materialize selected (2)…").click()
        dialog = page.get_by_role("dialog")
        partitions = dialog.get_by_placeholder("No matching partitions")
        partitions.fill(DAY)
        partitions.press("Enter")
        expect(dialog).to_contain_text("1 partition")
        page.screenshot(path=ARTIFACTS / "launch_dialog.png")
        dialog.get_by_role("button", name="Launch 1 run").click()

        # The launch toast links to the run; its page shows the run through to success.
        view = page.locator('a[href^="/runs/"]').filter(has_text="View")
        run_path = view.first.get_attribute("href")
        assert run_path and re.fullmatch(r"/runs/[0-9a-f-]{36}", run_path), run_path
        page.goto(f"{dagster_dev}{run_path}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=180_000)
        page.screenshot(path=ARTIFACTS / "run_succeeded.png")
        browser.close()

    run_id = run_path.rsplit("/", 1)[1]
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert {k.to_user_string() for k in run.asset_selection or ()} == {
            "raw_impressions",
            "ad_features",
        }
        assert instance.get_materialized_partitions(dg.AssetKey("ad_features")) == {DAY}
    assert (ARTIFACTS / "asset_graph.png").stat().st_size > 20_000
