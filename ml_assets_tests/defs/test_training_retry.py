"""The training asset's step retry on a real Dagster instance and a real local Ray: a worker is
SIGKILLed after the first checkpoint with Ray Train's own retries off (`max_failures: 0`), the
step fails, Dagster retries it, and the retry resumes from the checkpoint in storage."""

import dagster as dg
import pytest

from ml_assets import runner
from ml_assets_tests.ranking.chaos import KillWorkerAfterCheckpoint

pytestmark = pytest.mark.slow


def test_a_failed_training_step_is_retried_and_resumes_from_its_checkpoint(instance, ml_home):
    request = runner.PipelineRequest(
        end_date="2026-11-04",
        train_days=2,
        holdout_days=1,
        source={"rows_per_day": 30_000},
        training={"epochs": 3, "batch_size": 512, "max_failures": 0},
        promotion={"calibration_low": 0.85, "calibration_high": 1.15},
    )
    runner.materialize_partitions(instance, request)
    killer = KillWorkerAfterCheckpoint(ml_home / "storage" / "ray_train", "ranking_model-*")
    killer.start()
    result = runner.train_and_publish(instance, request)
    killer.join(timeout=5)

    assert killer.killed_pid is not None
    assert result.success
    events = [e.event_type_value for e in result.all_events if e.step_key == "ranking_model"]
    assert events.count("STEP_UP_FOR_RETRY") == 1 and events.count("STEP_RESTARTED") == 1
    failure = next(
        e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"
    ).event_specific_data
    assert "WorkerGroupError" in repr(failure.error)  # a lost worker, so retried
    metadata = runner.latest_metadata(instance, "ranking_model")
    # The retry lost only the epoch in flight: it resumed where the last checkpoint left off.
    assert metadata["resumed_from_epoch"] == killer.checkpoints_at_kill >= 1
    assert metadata["restarts"] == 1 and metadata["epochs"] == 3
    assert runner.latest_metadata(instance, "published_model")["version"] == 1
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    # The model is in MLflow: its checkpoints are gone, not piling up run after run.
    assert list((ml_home / "storage" / "ray_train").glob("ranking_model-*")) == []


def test_a_re_execution_resumes_the_same_training_and_nothing_else_does():
    from ml_assets.defs.ads_ranking.training.assets import TrainingConfig, checkpoint_name

    days = ["2026-11-01", "2026-11-02"]
    first = dg.DagsterRun(job_name="train_and_publish", run_id="a" * 36)
    again = dg.DagsterRun(
        job_name="train_and_publish", run_id="b" * 36, root_run_id="a" * 36, parent_run_id="a" * 36
    )
    other = dg.DagsterRun(job_name="train_and_publish", run_id="c" * 36)
    config = TrainingConfig()
    name = checkpoint_name(first, config, days)
    assert name.startswith("ranking_model-" + "a" * 36)
    assert checkpoint_name(again, config, days) == name
    assert checkpoint_name(other, config, days) != name
    assert checkpoint_name(again, TrainingConfig(epochs=config.epochs + 1), days) != name
    assert checkpoint_name(again, config, days[:1]) != name
