"""ranking_model's tuning mode on the production path: the Ray Tune search and the training it
chose are two Ray jobs on one ephemeral RayCluster of the real operator (a head pod and a worker
pod), the trials' checkpoints and the experiment's state in a real S3 server's bucket; the
cluster and the search's files are gone afterwards."""

import pytest

from ml_assets import runner
from ml_assets.definitions import build_definitions
from ml_assets.ranking.configs import TUNABLE
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import BUCKET
from ml_assets_tests.kube.run_pods import train_from_this_host
from ml_assets_tests.kube.test_real_operator import NodeWatch, assert_node_clean
from ml_assets_tests.test_storage import bucket_keys


@pytest.mark.slow
def test_the_search_and_the_training_it_chose_share_one_ephemeral_raycluster(
    kuberay_env, real_operator, node_s3, admin, instance, ml_home, monkeypatch, tmp_path
):
    root = f"s3://{BUCKET}/tuning-on-kuberay"
    # A worker pod of 2 Ray CPUs on the 2-core node: two trials side by side, then the training.
    train_from_this_host(monkeypatch, tmp_path, root)
    request = runner.PipelineRequest(
        end_date="2026-11-05", train_days=2, holdout_days=1,
        source={"rows_per_day": 8_000},
        training={"epochs": 2, "batch_size": 512,
                  "tuning": {"trials": 3, "reduction_factor": 2}},
        promotion={"calibration_low": 0.5, "calibration_high": 1.5},
    )  # fmt: skip
    runner.materialize_partitions(instance, request, definitions=build_definitions("local"))
    watch = NodeWatch(real_operator)
    result = runner.train_and_publish(instance, request, definitions=build_definitions())
    assert result.success
    assert_node_clean(admin, watch)

    # One cluster for the step, which both jobs ran on.
    (record,) = [r for r in load_records(open_root(f"{root}/xray"), result.run_id)
                 if r.step == "ranking_model"]  # fmt: skip
    assert record.mode == "kuberay" and record.outcome == "succeeded"
    assert record.cluster.startswith("mla-ranking-model-")
    messages = [event.message for event in instance.all_logs(result.run_id)]
    assert any("search of 3 trials" in message for message in messages)
    training = runner.latest_metadata(instance, "ranking_model")
    assert training["ray_cluster"] == record.cluster
    rows = [r.data for r in training["tuning_trials"].records]
    assert len(rows) == 3 and all(row["status"] in ("completed", "stopped") for row in rows)
    assert training["tuning_trial_core_seconds"] > 0
    assert set(training["tuned_settings"]) == set(TUNABLE)
    # The model is kept; the trials' checkpoints and the search's state went with the training's.
    keys = bucket_keys(node_s3, root)
    assert any(key.startswith(f"ranking_model/{result.run_id}/") for key in keys)
    assert not [key for key in keys if key.startswith("ray_train/")]
