"""A run pod SIGKILLed in the middle of training, with no cleanup sensor running: the step cannot
delete its RayCluster, and Kubernetes deletes it anyway. The run's Job fails, is deleted with its
pod `ttlSecondsAfterFinished` later (the Helm values' `jobSpecConfig`), and the garbage collector
deletes the RayCluster that pod owns (the downward API's pod name and uid in the step's env),
and KubeRay's pods with it. The test measures that bound."""

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from ml_assets import runner
from ml_assets.definitions import build_definitions
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
from ml_assets_tests.kube.run_pods import (
    account_kubeconfig,
    code_location_env,
    create_instance,
    delete_runs,
    instance_yaml,
    launch,
    run_pods,
)
from ml_assets_tests.kube.test_training_in_cluster import training_profile

JOB_TTL_S = 30  # the values ship 600 s; the mechanism is the same at any value
PROFILES = "ml-assets-profiles"  # a ConfigMap of cluster profiles, mounted into the run pods
PROFILES_DIR = "/opt/ml-assets/profiles"


def kill_pod(uid: str) -> int:
    """SIGKILLs every process of the pod's containers (found by the pod's cgroup, the node being
    this host), leaving its sandbox's pause process: what the OOM killer or a lost node does to a
    run, with no chance to clean up."""
    killed = 0
    for proc in Path("/proc").iterdir():
        try:
            cgroups = (proc / "cgroup").read_text()
            program = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except (OSError, NotADirectoryError):
            continue
        if f"pod{uid}" in cgroups and not program.endswith(b"pause"):
            os.kill(int(proc.name), signal.SIGKILL)
            killed += 1
    return killed


def ray_jobs(admin, cluster: str) -> list:
    """The head's Ray jobs (Jobs API with the token, at the head Service's address)."""
    from kubernetes import client
    from ray.job_submission import JobSubmissionClient

    found = client.CustomObjectsApi(admin).get_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, PLURAL, cluster
    )
    head = found.get("status", {}).get("head", {})
    if found["status"].get("state") != "ready" or not head.get("serviceIP"):
        return []
    jobs = JobSubmissionClient(
        f"http://{head['serviceIP']}:8265", headers={"Authorization": f"Bearer {RAY_TOKEN}"}
    )
    return [(job, jobs.get_job_logs(job.submission_id)) for job in jobs.list_jobs()]


@pytest.mark.slow
def test_a_sigkilled_run_pods_cluster_is_deleted_by_kubernetes_within_the_jobs_ttl(
    real_operator, node_s3, node_postgres, monkeypatch, tmp_path
):
    import dagster as dg
    from kubernetes import client

    admin = real_operator.control_plane.api_client()
    core, batch = client.CoreV1Api(admin), client.BatchV1Api(admin)
    root = f"s3://{BUCKET}/killed-run"
    monkeypatch.setenv("ML_ASSETS_STORAGE_ROOT", root)
    profile = training_profile(tmp_path)
    core.create_namespaced_config_map(
        NAMESPACE,
        {"metadata": {"name": PROFILES},
         "data": {f"{profile}.yaml": (tmp_path / f"{profile}.yaml").read_text()}},
    )  # fmt: skip
    home = tmp_path / "dagster_home"
    launcher = account_kubeconfig(real_operator.control_plane, "dagster", tmp_path / "kubeconfig")
    env = code_location_env(
        root, ML_ASSETS_RAY_PROFILE=profile, ML_ASSETS_RAY_PROFILES_DIR=PROFILES_DIR
    )
    instance = instance_yaml(
        node_postgres, launcher, env,
        cpu_request="10m",  # head 0.8 + worker 1.01 CPU of the node's 2
        job_ttl_s=JOB_TTL_S, config_maps={PROFILES: PROFILES_DIR},
    )  # fmt: skip
    create_instance(admin, home, instance)
    request = runner.PipelineRequest(
        end_date="2026-11-03", train_days=2, holdout_days=1,
        source={"rows_per_day": 20_000},
        training={"epochs": 100, "batch_size": 512},  # far more than the test waits for
    )  # fmt: skip
    began = time.monotonic()
    try:
        with dg.DagsterInstance.from_config(str(home)) as dagster:
            runner.materialize_partitions(dagster, request, definitions=build_definitions("local"))
        print(f"features in the bucket {time.monotonic() - began:.0f}s")
        (home / "run.yaml").write_text(yaml.safe_dump(request.training_run_config()))
        here = env | {"ML_ASSETS_RAY_PROFILES_DIR": str(tmp_path)}  # the launching process's
        run_id = launch(home, here, "train_and_publish", "--config", str(home / "run.yaml"))
        (cluster,) = wait_for(lambda: list_rayclusters(admin), 300, "the run's RayCluster")
        (pod,) = run_pods(admin, run_id)
        owner = client.CustomObjectsApi(admin).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, cluster
        )["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["uid"]) for o in owner] == [
            ("Pod", pod.metadata.name, pod.metadata.uid)
        ]
        wait_for(
            lambda: any(
                "[ranking_model] epoch 1 done" in log for _, log in ray_jobs(admin, cluster)
            ),
            600,
            "the first epoch of training on the cluster",
        )
        print(f"RayCluster {cluster} trained its first epoch {time.monotonic() - began:.0f}s")

        assert kill_pod(pod.metadata.uid) >= 1
        killed = time.monotonic()
        wait_for(
            lambda: any(
                c.type == "Failed" and c.status == "True"
                for c in batch.read_namespaced_job_status(pod.metadata.labels["job-name"],
                                                          NAMESPACE).status.conditions or []
            ),
            120,
            "the run's Job to fail",
        )  # fmt: skip
        failed = time.monotonic() - killed
        # The step died with its pod: its cluster is still there, training for nobody.
        assert list_rayclusters(admin) == [cluster]
        assert [job.status for job, _ in ray_jobs(admin, cluster)] == ["RUNNING"]

        wait_for(lambda: not run_pods(admin, run_id), JOB_TTL_S + 120, "the run pod's deletion")
        pod_gone = time.monotonic() - killed
        wait_for(lambda: not list_rayclusters(admin), 60, "the cluster's deletion")
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
    finally:
        delete_runs(admin)
        core.delete_namespaced_config_map(PROFILES, NAMESPACE)
