"""A baseline model through the same assets: `architecture: logistic` trains on Ray Train and is
evaluated by the same model_evaluation asset, on a real Dagster instance and a real local Ray."""

import pytest

from ml_assets import runner

pytestmark = pytest.mark.slow


def test_logistic_regression_baseline_is_trained_and_evaluated_by_the_same_assets(
    instance, ml_home
):
    request = runner.PipelineRequest(
        end_date="2026-11-04",
        train_days=2,
        holdout_days=1,
        source={"rows_per_day": 20_000},
        training={"architecture": "logistic", "epochs": 2, "learning_rate": 0.01},
        promotion={"calibration_low": 0.85, "calibration_high": 1.15},
    )
    runner.materialize_partitions(instance, request)
    assert runner.train_and_publish(instance, request).success
    training = runner.latest_metadata(instance, "ranking_model")
    evaluation = runner.latest_metadata(instance, "model_evaluation")
    assert training["architecture"] == "logistic"
    # A linear model learns the synthetic per-id effects, and stays short of the optimum.
    assert 0.6 < evaluation["model_auc"] < evaluation["optimum_auc"]
    assert 0 < evaluation["gap_closed"] < 1
    import mlflow

    store = f"sqlite:///{ml_home / 'mlflow.db'}"
    client = mlflow.MlflowClient(store, store)
    run = client.get_run(training["mlflow_run_id"])
    assert run.data.params["model_architecture"] == "logistic"
