"""ranking_model's tuning mode on a real Dagster instance and a real local Ray: a Ray Tune search
(ASHA) on the step's cluster, whose chosen settings train the candidate the gate judges."""

import dagster as dg
import mlflow
import pytest

from ml_assets import runner
from ml_assets.ranking.configs import TUNABLE, TrainConfig

pytestmark = pytest.mark.slow

WINDOW = {"end_date": "2026-11-05", "train_days": 3, "holdout_days": 1}
SOURCE = {"rows_per_day": 8_000}


def test_a_search_on_the_steps_cluster_chooses_the_settings_that_train_the_candidate(
    instance, ml_home
):
    request = runner.PipelineRequest(
        **WINDOW,
        source=SOURCE,
        training={"epochs": 2, "tuning": {"trials": 5, "reduction_factor": 2}},
        promotion={"calibration_low": 0.5, "calibration_high": 1.5},
    )
    runner.materialize_partitions(instance, request)
    assert runner.train_and_publish(instance, request).success
    training = runner.latest_metadata(instance, "ranking_model")

    trials = training["tuning_trials"].records
    assert len(trials) == 5
    rows = [record.data for record in trials]
    # Trial 0 is the run's settings (the shipped defaults, and the 2 epochs asked for); the
    # others are drawn from the default ranges.
    for name in TUNABLE:
        expected = 2 if name == "epochs" else getattr(TrainConfig, name)
        assert rows[0][name] == pytest.approx(expected, rel=1e-3), name
    for row in rows[1:]:
        for name, (low, high) in TUNABLE.items():
            assert low * 0.999 <= row[name] <= high * 1.001, (name, row)
    for row in rows:  # ASHA's early stops are the trials that did not get all their epochs
        assert (row["status"] == "stopped") == (row["epochs_run"] < row["epochs"]), row
    stopped = sum(row["status"] == "stopped" for row in rows)
    assert training["tuning_trials_stopped_early"] == stopped
    # The chosen trial is the completed one with the lowest validation log loss, unless its
    # lead over the defaults' finished run (ASHA never stops it) is within noise ...
    assert rows[0]["status"] == "completed"
    completed = [row for row in rows if row["status"] == "completed"]
    best = min(completed, key=lambda row: row["validation_log_loss"])
    lead = training["tuning_lead_over_defaults_z"]
    if best["trial"] == 0:
        assert training["tuning_chosen_trial"] == 0 and lead is None
    else:
        assert training["tuning_chosen_trial"] == (best["trial"] if lead >= 2 else 0), lead
    chosen = training["tuned_settings"]
    # A trained gate penalty shows which features the model kept; without one, nothing does.
    assert ("feature_gates" in training) == (chosen["feature_gate_penalty"] > 0)
    assert set(chosen) == set(TUNABLE)
    assert training["epochs"] == chosen["epochs"]  # the candidate trained the chosen epochs
    # ... and its settings are what trained the candidate that MLflow has and the gate judged.
    run = mlflow.MlflowClient(
        f"sqlite:///{ml_home / 'mlflow.db'}", f"sqlite:///{ml_home / 'mlflow.db'}"
    ).get_run(training["mlflow_run_id"])
    for name, value in chosen.items():
        assert float(run.data.params[name]) == pytest.approx(value, rel=1e-6), name
    assert run.data.tags["ml_assets.tuned"] == "true"
    assert "data:image/png;base64," in training["tuning_plot"]
    assert training["tuning_trial_core_seconds"] > 0 and training["tuning_resumed"] is False
    evaluation = runner.latest_metadata(instance, "model_evaluation")
    assert evaluation["mlflow_run_id"] == training["mlflow_run_id"]


@pytest.mark.parametrize(
    ("window", "tuning", "expected"),
    [
        ({**WINDOW, "train_days": 1}, {"trials": 2}, "at least two training days"),
        (WINDOW, {"ranges": {"dropout": [0.1, 0.5]}}, "cannot tune dropout"),
        (WINDOW, {"ranges": {"learning_rate": [0.01, 0.001]}}, "0 < low <= high"),
        (WINDOW, {"ranges": {"epochs": [1, 2.5]}}, "epochs is a whole number"),
        # Found on the cluster, before any trial waits for a node that cannot hold it.
        (WINDOW, {"cpus_per_trial": 512}, "512 CPUs and no node of the Ray cluster has more"),
    ],
)
def test_a_search_that_cannot_run_says_why_before_any_trial(
    instance, ml_home, window, tuning, expected
):
    request = runner.PipelineRequest(**window, source=SOURCE, training={"tuning": tuning})
    runner.materialize_partitions(instance, request)
    result = runner.train_and_publish(instance, request, raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "ranking_model"
    assert expected in str(failure.step_failure_data.error)
    assert not instance.get_latest_materialization_event(dg.AssetKey("ranking_model"))
