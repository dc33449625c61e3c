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


def test_a_cluster_too_small_for_the_training_fails_the_step_once_with_the_fix(instance, ml_home):
    """One CPU cannot both read data and train: the step fails with the plan's reason and the
    settings to change, and is not retried (another attempt would get the same cluster)."""
    from ml_assets.defs.ray_resource import LocalRayCluster

    location = build_definitions("local", resources={
        "retrieval_source": SOURCE, "ray_cluster": LocalRayCluster(num_cpus=1),
    })  # fmt: skip
    daily = location.resolve_job_def("retrieval_daily_features")
    for day in DAYS[-2:]:
        assert daily.execute_in_process(instance=instance, partition_key=day).success
    result = location.resolve_job_def("retrieval_train_and_publish").execute_in_process(
        instance=instance, run_config=window_config(train_days=1), raise_on_error=False
    )
    assert not result.success
    events = [e for e in result.all_events if e.step_key == "retrieval_model"]
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in events]
    (failure,) = [e for e in events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "cluster local-ray cannot hold this training" in message
    assert "1 CPU(s): too few to keep 1 for data loading" in message
    assert "use a larger cluster or a smaller data_cpu_share" in message
