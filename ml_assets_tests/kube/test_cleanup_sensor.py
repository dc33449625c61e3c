"""The cleanup sensor deletes clusters whose run ended, or that are too old, and nothing else:
on the real operator, whose pods for a deleted cluster go with it."""

import uuid

import dagster as dg

from ml_assets.defs.kuberay_resource import RayClusterApi
from ml_assets.defs.ray_cleanup import orphaned_ray_clusters
from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import load_profile
from ml_assets_tests.kube.conftest import NAMESPACE, apply, list_rayclusters, wait_for


def run_with_status(instance, status: dg.DagsterRunStatus) -> str:
    """A run record in the instance, as the daemon would have stored it."""
    run = dg.DagsterRun(job_name="train_and_publish", run_id=str(uuid.uuid4()), status=status)
    instance.add_run(run)
    return run.run_id


def cluster_for(run_id: str, uid: str, profile: str = "dev") -> dict:
    owner = ClusterOwner(run_id=run_id, asset="ranking_model", owner_uid=uid)
    return render_raycluster(load_profile(profile), owner)


def evaluate(control_plane, instance) -> str:
    api = RayClusterApi(namespace=NAMESPACE, kube_config=str(control_plane.kubeconfig))
    context = dg.build_sensor_context(instance=instance, resources={"ray_cluster_api": api})
    result = orphaned_ray_clusters(context)
    return result.skip_message


def pods_of(admin, cluster: dict) -> list[str]:
    from kubernetes import client

    selector = f"ray.io/cluster={cluster['metadata']['name']}"
    pods = client.CoreV1Api(admin).list_namespaced_pod(NAMESPACE, label_selector=selector)
    return [pod.metadata.name for pod in pods.items]


def test_deletes_the_cluster_of_an_ended_run_and_keeps_a_live_runs(
    control_plane, admin, instance, real_operator
):
    ended = cluster_for(run_with_status(instance, dg.DagsterRunStatus.FAILURE), "a1")
    live = cluster_for(run_with_status(instance, dg.DagsterRunStatus.STARTED), "b2")
    apply(admin, [ended, live])
    wait_for(lambda: pods_of(admin, ended) and pods_of(admin, live), 60, "the operator's pods")

    report = evaluate(control_plane, instance)

    assert list_rayclusters(admin) == [live["metadata"]["name"]]
    assert f"deleted 1 orphaned RayCluster(s) in ml-assets: {ended['metadata']['name']}" in report
    assert "ended (FAILURE)" in report and "kept 1 in use" in report
    # A second tick finds nothing more to do.
    assert evaluate(control_plane, instance).startswith("no orphaned RayClusters")
    assert list_rayclusters(admin) == [live["metadata"]["name"]]
    wait_for(lambda: not pods_of(admin, ended), 60, "the deleted cluster's pods to go")
    assert pods_of(admin, live)


def test_deletes_a_cluster_older_than_the_max_age_even_if_its_run_lives(
    control_plane, admin, instance, real_operator, monkeypatch
):
    live = cluster_for(run_with_status(instance, dg.DagsterRunStatus.STARTED), "c3")
    apply(admin, [live])
    monkeypatch.setenv("ML_ASSETS_RAY_CLUSTER_MAX_AGE_HOURS", "1e-9")  # 3.6 us: all too old
    report = evaluate(control_plane, instance)
    assert "older than 1e-09 h" in report
    assert list_rayclusters(admin) == []
