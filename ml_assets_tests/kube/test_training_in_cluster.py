"""`train_and_publish` in `kuberay` mode on the real operator, with the production topology's
split: the Dagster step on this host never joins the cluster; its Ray driver runs as a Ray job on
the head pod (Jobs API with the token, Dagster Pipes carrying logs and the result back), Ray
Train's worker runs in the worker pod, and everything in between goes through the bucket of a
real S3 server. MLflow stays on the step's side."""

import json

import yaml
from mlflow import MlflowClient

from ml_assets import environment, runner
from ml_assets.definitions import build_definitions
from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.ray.profiles import DEFAULT_PROFILES_DIR
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import BUCKET, RAY_TOKEN, list_rayclusters, ray_pods, wait_for
from ml_assets_tests.test_storage import bucket_keys


def training_profile(folder) -> str:
    """The dev profile with a worker Ray counts as 2 CPUs (KubeRay rounds a limit of 1.01 up):
    one for the training worker and one for Ray Data's reads, on a 2-core node; at 0.5 CPU the
    head took 294 s to start Ray, at the dev profile's 1 CPU nothing else fits. The head holds
    the job's driver (torch, Ray Train's controller and Ray Data's coordinator) beside Ray's own
    processes: at the dev profile's 2.5 GiB Ray's memory monitor killed the driver."""
    profile = yaml.safe_load((DEFAULT_PROFILES_DIR / "dev.yaml").read_text())
    profile |= {"name": "dev-train", "head_cpu": 0.8, "worker_cpu": 1.01}
    profile |= {"head_memory_gib": 4, "worker_memory_gib": 3.5}
    profile["quota"] |= {"max_memory_gib": 10}
    (folder / "dev-train.yaml").write_text(yaml.safe_dump(profile))
    return "dev-train"


def test_training_runs_as_a_ray_job_in_the_cluster_and_the_model_is_published(
    real_operator, node_s3, instance, ml_home, monkeypatch, tmp_path
):
    admin = real_operator.control_plane.api_client()
    root = f"s3://{BUCKET}/training-in-cluster"
    monkeypatch.setenv(environment.STORAGE_ROOT, root)
    cluster = KubeRayEphemeralCluster(
        profile=training_profile(tmp_path),
        profiles_dir=str(tmp_path),
        kube_config=str(real_operator.kubeconfig),
        ray_auth_token=RAY_TOKEN,
        head_address="service-ip",  # this host is routed into the cluster, without its DNS
    )
    definitions = build_definitions("local", resources={"ray_cluster": cluster})
    request = runner.PipelineRequest(
        end_date="2026-11-03",
        train_days=2,
        holdout_days=1,
        source={"rows_per_day": 20_000},
        training={"epochs": 2, "batch_size": 512},
        promotion={"calibration_low": 0.8, "calibration_high": 1.2},
    )
    runner.materialize_partitions(instance, request, definitions=definitions)
    result = runner.train_and_publish(instance, request, definitions=definitions)
    assert result.success

    training = runner.latest_metadata(instance, "ranking_model")
    assert training["ray_cluster"].startswith("mla-")
    assert training["workers"] == 1 and training["epochs"] == 2
    assert runner.latest_metadata(instance, "published_model")["version"] == 1
    logs = [
        event.message
        for event in instance.all_logs(result.run_id)
        if event.step_key == "ranking_model" and event.message
    ]
    assert any("[pipes] Ray job" in line and "started" in line for line in logs)
    (record,) = load_records(open_root(f"{root}/xray"), result.run_id)
    assert record.mode == "kuberay" and "driver_submitted" in record.timeline
    keys = bucket_keys(node_s3, root)
    assert f"ranking_model/{result.run_id}/weights.pt" in keys
    assert not [k for k in keys if k.startswith(("encoded/", "ray_train/"))]
    # The token went to the Jobs API only: no MLflow param or tag, run log or X-Ray file has it.
    mlflow_run = MlflowClient(environment.local_mlflow_tracking_uri()).get_run(
        training["mlflow_run_id"]
    )
    kept = [json.dumps(mlflow_run.data.params), json.dumps(mlflow_run.data.tags)]
    kept += [event.message for event in instance.all_logs(result.run_id)]
    xray = open_root(f"{root}/xray") / result.run_id
    kept += [path.read_text() for path in xray.rglob("*") if path.is_file()]
    assert len(kept) > 4 and not [text for text in kept if RAY_TOKEN in text]
    assert list_rayclusters(admin) == []
    wait_for(lambda: not ray_pods(admin), 90, "the cluster's pods to be deleted")
