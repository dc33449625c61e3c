"""The real KubeRay operator on the real node: the `dev` profile (the one that fits a 2-core
machine) gives a RayCluster whose head and worker run as pods under Pod Security `restricted`,
and a Ray job submitted with the cluster's token runs a task on the worker pod."""

import time

import pytest

from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import load_profile
from ml_assets_tests.kube.conftest import (
    GROUP,
    NAMESPACE,
    PLURAL,
    RAY_TOKEN,
    VERSION,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.ray_probe import run_probe_job


def create_cluster(admin, profile_name: str) -> dict:
    from kubernetes import client

    owner = ClusterOwner(run_id="real-operator-test", asset="probe", owner_uid="r0")
    manifest = render_raycluster(load_profile(profile_name), owner)
    return client.CustomObjectsApi(admin).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest
    )


def cluster_status(admin, name: str) -> dict:
    from kubernetes import client

    cluster = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
    return cluster.get("status") or {}


def test_the_dev_profile_runs_a_ray_task_on_a_worker_pod(real_operator):
    from kubernetes import client
    from ray.job_submission import JobSubmissionClient

    admin = real_operator.control_plane.api_client()
    requested = time.monotonic()
    name = create_cluster(admin, "dev")["metadata"]["name"]
    status = wait_for(
        lambda: (s := cluster_status(admin, name)).get("state") == "ready" and s,
        240,
        f"RayCluster {name} ready",
    )
    ready_s = time.monotonic() - requested

    pods = (
        client.CoreV1Api(admin)
        .list_namespaced_pod(NAMESPACE, label_selector=f"ray.io/cluster={name}")
        .items
    )
    kinds = sorted(pod.metadata.labels["ray.io/node-type"] for pod in pods)
    assert kinds == ["head", "worker"]
    addresses = {pod.status.pod_ip for pod in pods}
    assert len(addresses) == 2 and all(a.startswith("10.214.") for a in addresses)
    worker = next(pod for pod in pods if pod.metadata.labels["ray.io/node-type"] == "worker")

    dashboard = f"http://{status['head']['podIP']}:8265"
    refused = "401|403|Unauthorized|Forbidden: Invalid authentication token"
    with pytest.raises(Exception, match=refused):  # no token: not even a list
        JobSubmissionClient(dashboard).list_jobs()
    with pytest.raises(Exception, match=refused):  # a wrong one
        run_probe_job(dashboard, "0" * 64)
    ran = run_probe_job(dashboard, RAY_TOKEN)
    assert ran == {"host": worker.metadata.name, "uid": 1000, "gid": 100}
    print(f"RayCluster {name}: ready {ready_s:.1f}s after the request")

    client.CustomObjectsApi(admin).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
    wait_for(lambda: not ray_pods(admin), 60, "the cluster's pods to be deleted")


def test_a_profile_the_node_cannot_place_fails_within_seconds_and_is_deleted(
    real_operator, instance, tmp_path
):
    import dagster as dg
    import yaml

    from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
    from ml_assets.ray.profiles import DEFAULT_PROFILES_DIR
    from ml_assets_tests.kube.probe_defs import cluster_probe

    too_big = yaml.safe_load((DEFAULT_PROFILES_DIR / "dev.yaml").read_text())
    too_big |= {"name": "too-big", "worker_cpu": 8, "quota": {"max_workers": 2, "max_cpu": 32,
                                                              "max_memory_gib": 64}}  # fmt: skip
    (tmp_path / "too-big.yaml").write_text(yaml.safe_dump(too_big))
    resource = KubeRayEphemeralCluster(
        profile="too-big",
        profiles_dir=str(tmp_path),
        kube_config=str(real_operator.kubeconfig),
        ray_auth_token=RAY_TOKEN,
        unschedulable_timeout=1,
    )
    began = time.monotonic()
    result = dg.materialize(
        [cluster_probe], resources={"ray_cluster": resource}, instance=instance,
        raise_on_error=False,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    message = "\n".join(e.to_string() for e in errors if e is not None)
    assert not result.success
    assert "cannot be placed" in message and "Insufficient cpu" in message, message
    assert elapsed < 30, elapsed  # not the 600 s readiness timeout
    admin = real_operator.control_plane.api_client()
    wait_for(lambda: not ray_pods(admin), 60, "the cluster's pods to be deleted")
