"""The retrieval pipeline end to end on the embedded default: a real Dagster instance, a real
local Ray (the platform's training driver, unchanged), a real MLflow server and its registry.
The same jobs, pool and promotion as the ads pipeline, for a different model family."""

import mlflow
import numpy as np
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.resources import MlflowResource
from ml_assets.defs.retrieval.ingest import RequestSource
from ml_assets.runner import latest_metadata

pytestmark = pytest.mark.slow

DAYS = ["2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"]
SOURCE = RequestSource(users=600, ads=150, rows_per_day=12_000)


def window_config(**training) -> dict:
    config = {"end_date": DAYS[-1], "train_days": 3, "holdout_days": 1, "epochs": 3,
              "batch_size": 512, "num_workers": 2, **training}  # fmt: skip
    return {"ops": {"retrieval_model": {"config": config}}}


def test_the_retrieval_pipeline_publishes_a_champion_a_worse_model_cannot_replace(
    instance, ml_home, mlflow_server
):
    location = build_definitions("local", resources={
        "retrieval_source": SOURCE, "mlflow_tracking": MlflowResource(tracking_uri=mlflow_server),
    })  # fmt: skip
    daily = location.resolve_job_def("retrieval_daily_features")
    for day in DAYS:
        assert daily.execute_in_process(instance=instance, partition_key=day).success
    train = location.resolve_job_def("retrieval_train_and_publish")
    assert train.execute_in_process(instance=instance, run_config=window_config()).success

    evaluation = latest_metadata(instance, "retrieval_evaluation")
    assert evaluation["hit_rate_vs_popularity_ci_low"] > 0
    assert evaluation["model_recall"] > evaluation["popularity_recall"]
    published = latest_metadata(instance, "published_retrieval_model")
    assert published["promoted"] is True and published["version"] == 1
    # The registered model retrieves K ads per request from its own packaged embeddings.
    scorer = mlflow.pyfunc.load_model(published["champion_uri"])
    requests = SOURCE.world().requests("2026-11-09", 5).to_pandas()
    retrieved = np.asarray(scorer.predict(requests))
    assert retrieved.shape == (5, 10) and set(retrieved.ravel()) <= set(range(SOURCE.ads))

    # One epoch instead of three: still better than popularity (the check passes), not better
    # than the champion (the gate holds): it stays challenger, the champion stays.
    weak = window_config(epochs=1)
    assert train.execute_in_process(instance=instance, run_config=weak).success
    published = latest_metadata(instance, "published_retrieval_model")
    assert published["promoted"] is False and published["champion_version"] == 1
    client = mlflow.MlflowClient(mlflow_server, mlflow_server)
    assert client.get_model_version_by_alias("ads_retrieval_two_tower", "champion").version == "1"
