"""`dagster-webserver` against workspace.yaml serves the same code location (real server)."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from ml_assets_tests.conftest import VENV_BIN, free_port, wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } isPartitioned } }"


def test_webserver_shows_the_pipeline_assets(tmp_path):
    port = free_port()
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "ML_ASSETS_HOME": str(tmp_path / "ml")}
    process = subprocess.Popen(
        [
            str(VENV_BIN / "dagster-webserver"),
            "-w",
            str(REPO / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/server_info", process, timeout=120)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": QUERY}).encode(),
            headers={"Content-Type": "application/json"},
        )
        # The code location loads in its own process after the server answers: poll for it.
        deadline = time.monotonic() + 120
        while True:
            with urllib.request.urlopen(request, timeout=10) as response:
                nodes = json.load(response)["data"]["assetNodes"]
            if nodes or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        found = {node["assetKey"]["path"][0]: node["isPartitioned"] for node in nodes}
        assert found == {
            "raw_impressions": True,
            "ad_features": True,
            "feature_vocabulary": False,
            "ranking_model": False,
            "model_evaluation": False,
            "published_model": False,
            "ad_requests": True,
            "retrieval_model": False,
            "retrieval_evaluation": False,
            "published_retrieval_model": False,
        }
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
