"""The whole pipeline on a real Dagster instance, a real local Ray and a real MLflow server."""

import inspect
import shutil

import dagster as dg
import mlflow
import numpy as np
import polars as pl
import psutil
import pytest
import ray
import yaml
from typer.testing import CliRunner

from ml_assets import runner
from ml_assets.cli import app
from ml_assets.definitions import defs
from ml_assets.defs.resources import StorageResource
from ml_assets.version import code_version
from ml_assets.xray.record import load_records
from ml_assets_tests.conftest import step_span

pytestmark = pytest.mark.slow

END = "2026-11-08"


def request_for(mlflow_uri: str, **training) -> runner.PipelineRequest:
    return runner.PipelineRequest(
        end_date=END,
        train_days=2,
        holdout_days=1,
        source={"rows_per_day": 30_000},
        training={"epochs": 2, "num_workers": 2, "batch_size": 512, **training},
        # Mechanics, not quality: a small model on 60k rows is allowed a looser calibration.
        promotion={"calibration_low": 0.85, "calibration_high": 1.15},
        extra_resources={"mlflow_tracking": {"tracking_uri": mlflow_uri}},
    )


def champion_version(client, name="ads_ctr_ranker"):
    from ml_assets.model_registry import current_champion

    return current_champion(client, name)


def record_partition_reads(monkeypatch) -> set[tuple[str, str]]:
    """(asset, asset folder) for each daily folder that an asset's step addresses, found from
    the asset function on the call stack (the runs execute in this process)."""
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    seen: set[tuple[str, str]] = set()
    partition_dir = StorageResource.partition_dir

    def recording(self, asset: str, date: str):
        step = next((f.function for f in inspect.stack(0) if f.function in assets), None)
        if step is not None:
            seen.add((step, asset))
        return partition_dir(self, asset, date)

    monkeypatch.setattr(StorageResource, "partition_dir", recording)
    return seen


def test_pipeline_publishes_a_champion_that_a_worse_model_cannot_replace(
    instance, ml_home, mlflow_server, monkeypatch, tmp_path
):
    reads = record_partition_reads(monkeypatch)
    request = request_for(mlflow_server)
    ran = runner.materialize_partitions(instance, request)
    assert ran == ["2026-11-06", "2026-11-07", "2026-11-08"]
    assert runner.materialize_partitions(instance, request) == []  # idempotent re-run skips

    result = runner.train_and_publish(instance, request)
    assert result.success
    evaluation = runner.latest_metadata(instance, "model_evaluation")
    published = runner.latest_metadata(instance, "published_model")
    training = runner.latest_metadata(instance, "ranking_model")
    assert published["promoted"] is True and published["version"] == 1
    assert published["champion_uri"] == "models:/ads_ctr_ranker@champion"
    assert published["serving_max_abs_diff"] <= 1e-6  # the blocking skew check ran, and passed
    # The model learned something real, and did not beat the true probabilities.
    assert evaluation["model_auc"] > 0.7
    assert evaluation["model_normalized_entropy"] < 0.95
    assert evaluation["optimum_log_loss"] < evaluation["model_log_loss"]
    assert 0 < evaluation["gap_closed"] < 1
    assert training["epochs"] == 2 and training["workers"] == 2
    assert training["loss_curve"].startswith("![training loss](data:image/png;base64,")
    # The learning curve's last holdout point is the model evaluation then judges.
    assert training["final_holdout_log_loss"] == pytest.approx(
        evaluation["model_log_loss"], abs=1e-4
    )

    client = mlflow.MlflowClient(mlflow_server, mlflow_server)
    assert champion_version(client) == "1"
    run = client.get_run(training["mlflow_run_id"])
    assert run.data.params["epochs"] == "2"
    # X-Ray of the embedded Ray: what the training step's cluster did, kept after it stopped.
    (xray,) = load_records(ml_home / "xray", result.run_id)
    assert xray.mode == "local" and xray.outcome == "succeeded" and xray.cpus == 2
    assert list(xray.timeline) == [
        "requested", "connected", "training_started", "training_finished", "deleted"
    ]  # fmt: skip
    assert {s["process"] for s in xray.samples} >= {"node"}
    assert xray.logs and len(xray.epochs) == 2
    # The in-process run set its resources up at its start, but the embedded Ray lived only
    # while the training step's Ray work ran: not through the steps before and after it.
    assert xray.step == "ranking_model"
    began, ended = step_span(instance, result.run_id, "ranking_model")
    assert began < xray.timeline["requested"] < xray.timeline["deleted"] < ended
    # Lineage: every asset whose data a step reads is one of the step's declared dependencies,
    # so the UI's graph shows every edge along which data flows.
    graph = defs.resolve_asset_graph()
    for step, folder in reads:
        declared = {k.to_user_string() for k in graph.get(dg.AssetKey(step)).parent_keys}
        assert folder == step or folder in declared, f"{step} reads {folder} undeclared"
    assert {
        ("ranking_model", "raw_impressions"),
        ("model_evaluation", "ad_features"),
        ("model_evaluation", "raw_impressions"),
    } <= reads
    assert {a.path for a in client.list_artifacts(run.info.run_id, "xray")} == {
        "xray/xray.json",
        "xray/report.html",
    }
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
    assert len(client.get_metric_history(run.info.run_id, "validation_log_loss")) == 2
    assert "holdout_model_auc" in run.data.metrics and "holdout_optimum_auc" in run.data.metrics

    # The registered champion scores raw impressions exactly as evaluation did.
    mlflow.set_tracking_uri(mlflow_server)
    scorer = mlflow.pyfunc.load_model("models:/ads_ctr_ranker@champion")
    raw = pl.read_parquet(ml_home / "storage/raw_impressions" / f"date={END}/impressions.parquet")
    served = np.asarray(scorer.predict(raw.head(500).to_pandas()))
    predictions = pl.read_parquet(
        next((ml_home / "storage/model_evaluation").glob("*/predictions.parquet"))
    )
    np.testing.assert_allclose(served, predictions["probability"].head(500).to_numpy(), rtol=1e-5)

    # A deliberately worse challenger (one optimizer step) is stopped by the blocking checks.
    worse = runner.train_and_publish(
        instance,
        request_for(mlflow_server, epochs=1, max_steps_per_epoch=1),
        raise_on_error=False,
    )
    assert not worse.success
    checks = worse.get_asset_check_evaluations()
    assert any(not c.passed for c in checks)
    assert champion_version(client) == "1"
    assert [v.version for v in client.search_model_versions("name='ads_ctr_ranker'")] == ["1"]
    assert runner.latest_metadata(instance, "published_model")["version"] == 1

    # `ml-assets models` and `reproduce` read the same registry and Dagster instance.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    monkeypatch.setenv("COLUMNS", "200")
    listed = CliRunner().invoke(app, ["models"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("│ 1 "))
    assert "challenger, champion" in row and "True" in row
    config = tmp_path / "reproduce.yaml"
    shown = CliRunner().invoke(app, ["reproduce", "1", "--write-config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert result.run_id in shown.output and code_version() in shown.output
    assert "--from 2026-11-06 --to 2026-11-08" in shown.output  # training days + holdout
    assert f"--config {config}" in shown.output
    assert yaml.safe_load(config.read_text())["ops"]["ranking_model"]["config"]["epochs"] == 2
    assert CliRunner().invoke(app, ["reproduce", "7"]).exit_code == 1
    # `ml-assets xray` finds the record in MLflow once the local copy is gone (a deleted pod).
    shutil.rmtree(ml_home / "xray")
    shown = CliRunner().invoke(app, ["xray", result.run_id[:8]])
    assert shown.exit_code == 0, shown.output
    assert "on local-ray succeeded" in shown.output and "training_finished" in shown.output

    # Each step's embedded Ray was stopped with the step, on success and on failure alike.
    assert not ray.is_initialized()
    assert ray_processes() == []


def ray_processes() -> list[str]:
    """Ray's per-cluster daemons (GCS server, raylet) still running on this host."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "gcs_server" in command or "/raylet" in command:
            found.append(command[:120])
    return found
