"""`train_and_publish` deployed as production runs it, on the real operator: each run in a run
pod of its own (K8sRunLauncher, the Helm values' pod, `ML_ASSETS_ENV=production`), its training
a Ray job on a RayCluster of its own (a head pod and a worker pod: the 2-core node fits no
second worker beside them), every stored thing in a real S3 server's bucket, and the registry a
tracking server (`mlflow server`) in the node's network, serving its artifacts. The pods
share nothing but the network: the second run, in a fresh run pod, reads the first one's
champion from the tracking server and scores it on the same holdout before it decides."""

import dataclasses
import json

import pytest

from ml_assets import environment, runner
from ml_assets.definitions import build_definitions
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import BUCKET, RAY_TOKEN, list_rayclusters, ray_pods, wait_for
from ml_assets_tests.kube.run_pods import (
    delete_runs,
    finished_run,
    run_pods,
    training_deployment,
)
from ml_assets_tests.test_storage import bucket_keys

MODEL = "ads_ctr_ranker"


@pytest.mark.slow
def test_runs_in_run_pods_publish_to_the_tracking_server_and_the_next_gates_on_its_champion(
    real_operator, node_s3, node_postgres, node_mlflow, monkeypatch, tmp_path
):
    import dagster as dg
    from mlflow import MlflowClient

    admin = real_operator.control_plane.api_client()
    root = f"s3://{BUCKET}/training-in-run-pods"
    monkeypatch.setenv(environment.STORAGE_ROOT, root)
    deployment = training_deployment(
        admin, real_operator.control_plane, node_postgres, tmp_path, root,
        ML_ASSETS_ENV="production", MLFLOW_TRACKING_URI=node_mlflow,
    )  # fmt: skip
    first = runner.PipelineRequest(
        end_date="2026-11-03", train_days=2, holdout_days=1,
        source={"rows_per_day": 20_000},
        training={"epochs": 2, "batch_size": 512},
        promotion={"calibration_low": 0.8, "calibration_high": 1.2},
    )  # fmt: skip
    # Another model on the same window: it must be judged against the first one's.
    second = dataclasses.replace(first, training={"epochs": 1, "batch_size": 1024})
    runs, published, trained, pods = [], [], [], []
    try:
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
            runner.materialize_partitions(instance, first, definitions=build_definitions("local"))
            for request in (first, second):
                run_id = deployment.launch(request)
                finished_run(instance, admin, run_id)
                runs.append(run_id)
                (pod,) = run_pods(admin, run_id)
                pods.append(pod)
                published.append(runner.latest_metadata(instance, "published_model"))
                trained.append(runner.latest_metadata(instance, "ranking_model"))
            messages = [e.message for run_id in runs for e in instance.all_logs(run_id)]
    finally:
        delete_runs(admin)

    # Two pods of their own, neither of which outlived its run's cluster.
    assert pods[0].metadata.uid != pods[1].metadata.uid
    assert {pod.spec.service_account_name for pod in pods} == {"ml-assets-code-location"}
    assert list_rayclusters(admin) == []
    wait_for(lambda: not ray_pods(admin), 90, "the clusters' pods to be deleted")
    for run_id, training in zip(runs, trained, strict=True):
        assert training["ray_cluster"].startswith("mla-ranking-model-")
        (record,) = load_records(open_root(f"{root}/xray"), run_id)
        assert record.mode == "kuberay" and "driver_submitted" in record.timeline
        start = record.timeline["requested"]
        print(" ".join(f"{e} {t - start:.1f}s" for e, t in record.timeline.items()))

    # The first run published the registry's first version, the champion, on the server.
    assert published[0]["version"] == 1 and published[0]["champion_version"] == 1
    assert published[0]["previous_champion_version"] == 0
    # The second, from a fresh pod, found that champion there and was judged against it.
    assert published[1]["version"] == 2 and published[1]["previous_champion_version"] == 1
    client = MlflowClient(node_mlflow, node_mlflow)
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    assert int(champion) == published[1]["champion_version"]
    # The models' artifacts went through the server, which the second pod loaded the champion
    # from; everything else is in the bucket.
    assert all(client.list_artifacts(t["mlflow_run_id"]) for t in trained)
    keys = bucket_keys(node_s3, root)
    assert all(f"ranking_model/{run_id}/weights.pt" in keys for run_id in runs)
    assert not [k for k in keys if k.startswith(("encoded/", "ray_train/"))]

    # The token went to the Jobs API only: no MLflow param or tag, run log or X-Ray file has it.
    kept = list(messages)
    for training in trained:
        mlflow_run = client.get_run(training["mlflow_run_id"])
        kept += [json.dumps(mlflow_run.data.params), json.dumps(mlflow_run.data.tags)]
    for run_id in runs:
        xray = open_root(f"{root}/xray") / run_id
        kept += [path.read_text() for path in xray.rglob("*") if path.is_file()]
    assert len(kept) > 10 and not [text for text in kept if text and RAY_TOKEN in text]
