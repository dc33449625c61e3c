"""The whole pipeline with its storage root in a bucket of a real S3-compatible server: every
partition, vocabulary, encoded window, checkpoint, model, X-Ray record and handed-over value
goes through the bucket, and nothing through a local folder."""

from pathlib import Path

import mlflow
import pytest

from ml_assets import environment, runner
from ml_assets.definitions import build_definitions
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.defs.test_end_to_end import champion_version, request_for
from ml_assets_tests.test_storage import bucket_keys

pytestmark = pytest.mark.slow


def test_the_pipeline_keeps_all_it_stores_in_the_bucket(
    instance, ml_home, s3_server, s3_root, monkeypatch, tmp_path
):
    monkeypatch.setenv(environment.STORAGE_ROOT, s3_root)
    definitions = build_definitions("local")
    # A registry of its own: the session's MLflow server keeps other tests' champions.
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    request = request_for(tracking)
    days = runner.materialize_partitions(instance, request, definitions=definitions)
    # Training starts from a home of its own, as a run pod would: it can only find the days'
    # features, and the steps only each other's values, through the bucket.
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path / "another_pod"))
    result = runner.train_and_publish(instance, request, definitions=definitions)
    assert result.success
    assert runner.latest_metadata(instance, "published_model")["promoted"] is True
    assert champion_version(mlflow.MlflowClient(tracking, tracking)) == "1"

    keys = bucket_keys(s3_server, s3_root)
    run = result.run_id
    expected = {
        *(f"raw_impressions/date={day}/impressions.parquet" for day in days),
        *(f"raw_impressions/date={day}/truth.parquet" for day in days),
        *(f"ad_features/date={day}/features.parquet" for day in days),
        f"feature_vocabulary/{run}/vocabulary.json",
        *(f"ranking_model/{run}/{name}" for name in ("weights.pt", "model_config.json")),
        f"ranking_model/{run}/vocabulary.json",
        f"model_evaluation/{run}/predictions.parquet",
        f"model_evaluation/{run}/holdout_raw.parquet",
        *(f"dagster/{asset}.pickle" for asset in ("feature_vocabulary", "ranking_model")),
        *(f"dagster/{asset}.pickle" for asset in ("model_evaluation", "published_model")),
    }
    assert expected <= keys, sorted(expected - keys)
    # In process, resources start once per run, so X-Ray names the record after the job.
    xray = {k for k in keys if k.startswith(f"xray/{run}/")}
    assert {k.rsplit("/", 1)[1] for k in xray} == {"xray.json", "report.html"}
    (record,) = load_records(open_root(environment.xray_root()), run)  # as `ml-assets xray`
    assert record.outcome == "succeeded" and "training_started" in record.timeline
    # The encoded window and the checkpoints go once the model is in MLflow.
    leftovers = [k for k in keys if k.startswith(("encoded/", "ray_train/"))]
    assert leftovers == []
    # Nothing on local disk: no storage folder in either home, no values in Dagster's.
    assert not (ml_home / "storage").exists()
    assert not (tmp_path / "another_pod" / "storage").exists()
    dagster_values = Path(instance.storage_directory())
    assert not list(dagster_values.rglob("*vocabulary*"))
    assert not list(dagster_values.rglob("ranking_model*"))
