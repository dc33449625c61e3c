"""A run pod that dies in the middle of training, with no cleanup sensor running.

SIGKILLed, the step cannot delete its RayCluster, and Kubernetes deletes it anyway: the run's
Job fails, is deleted with its pod `ttlSecondsAfterFinished` later (the Helm values'
`jobSpecConfig`), and the garbage collector deletes the RayCluster that pod owns (the downward
API's pod name and uid in the step's env), and KubeRay's pods with it. The test measures that
bound.

Deleted (SIGTERM, then SIGKILL when its grace ends), the step deletes its cluster itself, within
the grace."""

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml_assets import runner
from ml_assets.definitions import build_definitions
from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import (
    BUCKET,
    GROUP,
    NAMESPACE,
    PLURAL,
    RAY_TOKEN,
    VERSION,
    list_rayclusters,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.run_pods import delete_runs, kill_pod, run_pods, training_deployment

JOB_TTL_S = 20  # the values ship 600 s; the mechanism is the same at any value
GRACE_S = 30  # Kubernetes' default termination grace period


def ray_jobs(admin, cluster: str) -> list:
    """The head's Ray jobs (Jobs API with the token, at the head Service's address)."""
    from kubernetes import client
    from ray.job_submission import JobSubmissionClient

    found = client.CustomObjectsApi(admin).get_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, PLURAL, cluster
    )
    status = found.get("status") or {}  # none until the operator first reconciles it
    head = status.get("head") or {}
    if status.get("state") != "ready" or not head.get("serviceIP"):
        return []
    jobs = JobSubmissionClient(
        f"http://{head['serviceIP']}:8265", headers={"Authorization": f"Bearer {RAY_TOKEN}"}
    )
    return [(job, jobs.get_job_logs(job.submission_id)) for job in jobs.list_jobs()]


@dataclass
class TrainingRun:
    admin: object
    home: Path
    root: str
    run_id: str
    cluster: str
    pod: object
    began: float


@contextlib.contextmanager
def training_in_a_run_pod(real_operator, node_postgres, monkeypatch, tmp_path, root: str):
    """A `train_and_publish` run in a run pod, yielded once its Ray job logs the first epoch
    on its RayCluster, which the pod owns; every run's Job and pod deleted afterwards."""
    import dagster as dg
    from kubernetes import client

    admin = real_operator.control_plane.api_client()
    monkeypatch.setenv("ML_ASSETS_STORAGE_ROOT", root)
    deployment = training_deployment(
        admin, real_operator.control_plane, node_postgres, tmp_path, root, job_ttl_s=JOB_TTL_S
    )
    request = runner.PipelineRequest(
        end_date="2026-11-03", train_days=2, holdout_days=1,
        source={"rows_per_day": 20_000},
        training={"epochs": 100, "batch_size": 512},  # far more than the test waits for
    )  # fmt: skip
    began = time.monotonic()
    try:
        with dg.DagsterInstance.from_config(str(deployment.home)) as dagster:
            runner.materialize_partitions(dagster, request, definitions=build_definitions("local"))
        print(f"features in the bucket {time.monotonic() - began:.0f}s")
        run_id = deployment.launch(request)
        (cluster,) = wait_for(lambda: list_rayclusters(admin), 300, "the run's RayCluster")
        (pod,) = run_pods(admin, run_id)
        owner = client.CustomObjectsApi(admin).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, cluster
        )["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["uid"]) for o in owner] == [
            ("Pod", pod.metadata.name, pod.metadata.uid)
        ]
        wait_for(
            lambda: any("[ranking_model] epoch 1 " in log for _, log in ray_jobs(admin, cluster)),
            600,
            "training's first steps on the cluster",
        )
        print(f"RayCluster {cluster} is training {time.monotonic() - began:.0f}s")
        yield TrainingRun(admin, deployment.home, root, run_id, cluster, pod, began)
    finally:
        delete_runs(admin)


def job_failed(admin, pod) -> bool:
    from kubernetes import client

    job = client.BatchV1Api(admin).read_namespaced_job_status(
        pod.metadata.labels["job-name"], NAMESPACE
    )
    return any(c.type == "Failed" and c.status == "True" for c in job.status.conditions or [])


@pytest.mark.slow
def test_a_sigkilled_run_pods_cluster_is_deleted_by_kubernetes_within_the_jobs_ttl(
    real_operator, node_s3, node_postgres, monkeypatch, tmp_path
):
    root = f"s3://{BUCKET}/killed-run"
    with training_in_a_run_pod(real_operator, node_postgres, monkeypatch, tmp_path, root) as run:
        admin, cluster, pod = run.admin, run.cluster, run.pod
        assert kill_pod(pod.metadata.uid) >= 1
        killed = time.monotonic()
        wait_for(lambda: job_failed(admin, pod), 120, "the run's Job to fail")
        failed = time.monotonic() - killed
        # The step died with its pod: its cluster is still there, training for nobody.
        assert list_rayclusters(admin) == [cluster]
        assert [job.status for job, _ in ray_jobs(admin, cluster)] == ["RUNNING"]

        wait_for(lambda: not run_pods(admin, run.run_id), JOB_TTL_S + 120, "the pod's deletion")
        pod_gone = time.monotonic() - killed
        wait_for(lambda: not list_rayclusters(admin), 120, "the cluster's deletion")
        cluster_gone = time.monotonic() - killed
        wait_for(lambda: not ray_pods(admin), 120, "the cluster's pods to be deleted")
        pods_gone = time.monotonic() - killed
        print(
            f"SIGKILL -> Job failed {failed:.1f}s, run pod deleted {pod_gone:.1f}s, "
            f"RayCluster deleted {cluster_gone:.1f}s, "
            f"Ray pods gone {pods_gone:.1f}s (Job TTL {JOB_TTL_S}s)"
        )
        # Deleted by the Job's TTL and the garbage collector, not before.
        assert pod_gone >= failed + JOB_TTL_S - 2  # the TTL's clock counts whole seconds


@pytest.mark.slow
def test_a_run_pod_deleted_mid_training_deletes_its_cluster_within_the_grace_period(
    real_operator, node_s3, node_postgres, monkeypatch, tmp_path
):
    """What terminating a run from the UI, a drain or an eviction does: the pod is deleted with
    its 30 s grace, so the run process gets SIGTERM, and SIGKILL when the grace ends. Dagster
    maps SIGTERM to an interrupt; the step must delete its cluster and write its X-Ray record
    within the grace, itself, before the garbage collector could act (its owner pod still
    exists until the process exits)."""
    import dagster as dg
    from kubernetes import client

    root = f"s3://{BUCKET}/terminated-run"
    with training_in_a_run_pod(real_operator, node_postgres, monkeypatch, tmp_path, root) as run:
        admin, pod = run.admin, run.pod
        client.CoreV1Api(admin).delete_namespaced_pod(
            pod.metadata.name, NAMESPACE, grace_period_seconds=GRACE_S
        )
        terminated = time.monotonic()
        pod_when_cluster_went: list[bool] = []

        def cluster_gone() -> bool:
            gone = not list_rayclusters(admin)
            if gone:
                pod_when_cluster_went.append(bool(run_pods(admin, run.run_id)))
            return gone

        wait_for(cluster_gone, GRACE_S, "the step to delete its cluster")
        cluster_gone_s = time.monotonic() - terminated
        wait_for(lambda: not run_pods(admin, run.run_id), GRACE_S + 30, "the run pod's exit")
        pod_gone = time.monotonic() - terminated
        wait_for(lambda: not ray_pods(admin), 120, "the cluster's pods to be deleted")
        print(f"SIGTERM -> RayCluster deleted {cluster_gone_s:.1f}s, run pod gone {pod_gone:.1f}s")
        with dg.DagsterInstance.from_config(str(run.home)) as instance:
            status = instance.get_run_by_id(run.run_id).status
        (record,) = load_records(open_root(f"{root}/xray"), run.run_id)

    # The step deleted its cluster itself: its owner pod still existed (so the garbage
    # collector had no reason to), and its record says it did, with the interruption as error.
    assert pod_when_cluster_went == [True]
    assert "deleted" in record.timeline and record.outcome == "failed", record.error
    assert status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
