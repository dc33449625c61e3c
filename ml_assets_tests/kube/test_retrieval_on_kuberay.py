"""The retrieval pipeline on the platform's production path, with no code of its own for it: its
training is a Ray job on an ephemeral RayCluster of the real operator (a head pod and a worker
pod), reading the window and the ad catalog from a real S3 server's bucket and writing its
checkpoints there; evaluation and the gate follow on this host, and the cluster is gone after."""

import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.resources import MlflowResource
from ml_assets.defs.retrieval import REGISTERED_MODEL
from ml_assets.defs.retrieval.ingest import RequestSource
from ml_assets.model_registry import current_champion
from ml_assets.runner import latest_metadata
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import BUCKET
from ml_assets_tests.kube.run_pods import train_from_this_host
from ml_assets_tests.kube.test_real_operator import NodeWatch, assert_node_clean
from ml_assets_tests.test_storage import bucket_keys

DAYS = ["2026-11-05", "2026-11-06", "2026-11-07"]


@pytest.mark.slow
def test_the_retrieval_model_trains_on_an_ephemeral_raycluster_and_is_published(
    kuberay_env, real_operator, node_s3, admin, instance, ml_home, monkeypatch, tmp_path
):
    root = f"s3://{BUCKET}/retrieval-on-kuberay"
    # The profile the ads pipeline's run-pod training uses: a worker pod of 2 Ray CPUs, one to
    # train and one for data, on the 2-core node.
    train_from_this_host(monkeypatch, tmp_path, root)
    source = RequestSource(users=600, ads=150, rows_per_day=8_000)
    location = build_definitions(resources={"retrieval_source": source})
    daily = location.resolve_job_def("retrieval_daily_features")
    for day in DAYS:
        assert daily.execute_in_process(instance=instance, partition_key=day).success
    watch = NodeWatch(real_operator)
    window = {"end_date": DAYS[-1], "train_days": 2, "holdout_days": 1, "epochs": 3,
              "batch_size": 512}  # fmt: skip
    result = location.resolve_job_def("retrieval_train_and_publish").execute_in_process(
        instance=instance, run_config={"ops": {"retrieval_model": {"config": window}}}
    )
    assert result.success
    assert_node_clean(admin, watch)

    (record,) = load_records(open_root(f"{root}/xray"), result.run_id)
    assert record.mode == "kuberay" and record.step == "retrieval_model"
    assert record.cluster.startswith("mla-retrieval-model-") and record.outcome == "succeeded"
    assert {"driver_submitted", "deleted"} <= set(record.timeline)
    # X-Ray sampled the cluster's two pods, where the driver and the training ran.
    sampled = {sample["node"] for sample in record.samples if sample["process"] == "node"}
    assert len(sampled) == 2 and all(node.startswith(record.cluster) for node in sampled)
    training = latest_metadata(instance, "retrieval_model")
    assert training["epochs"] == 3
    assert training["final_holdout_hit_rate_at_10"] > 0

    evaluation = latest_metadata(instance, "retrieval_evaluation")
    assert evaluation["hit_rate_vs_popularity_ci_low"] > 0  # the blocking check passed
    published = latest_metadata(instance, "published_retrieval_model")
    assert published["promoted"] is True and published["version"] == 1
    assert current_champion(MlflowResource().client(), REGISTERED_MODEL) == "1"
    # The model is kept in the bucket; the checkpoints it no longer needs are gone from it.
    keys = bucket_keys(node_s3, root)
    assert any(key.startswith(f"retrieval_model/{result.run_id}/") for key in keys)
    assert any(key.startswith("ad_catalog/") for key in keys)
    assert not [key for key in keys if key.startswith("ray_train/")]
