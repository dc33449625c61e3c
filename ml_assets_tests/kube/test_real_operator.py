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
    cancel_probe_run,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.ray_probe import GCS_PROBE, run_probe_job, run_script_job


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


def create_ready_cluster(admin, profile_name: str) -> tuple[str, dict]:
    """A RayCluster of the profile, once KubeRay reports it ready: its name and status."""
    name = create_cluster(admin, profile_name)["metadata"]["name"]
    status = wait_for(
        lambda: (s := cluster_status(admin, name)).get("state") == "ready" and s,
        240,
        f"RayCluster {name} ready",
    )
    return name, status


def test_the_dev_profile_runs_a_ray_task_on_a_worker_pod(real_operator):
    from kubernetes import client
    from ray.job_submission import JobSubmissionClient

    admin = real_operator.control_plane.api_client()
    requested = time.monotonic()
    name, status = create_ready_cluster(admin, "dev")
    ready_s = time.monotonic() - requested

    pods = (
        client.CoreV1Api(admin)
        .list_namespaced_pod(NAMESPACE, label_selector=f"ray.io/cluster={name}")
        .items
    )
    kinds = sorted(pod.metadata.labels["ray.io/node-type"] for pod in pods)
    assert kinds == ["head", "worker"]
    # The label k8s/networkpolicy.yaml selects the Ray pods by.
    assert all(pod.metadata.labels["ray.io/is-ray-node"] == "yes" for pod in pods)
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
    # At the GCS: Ray drivers on the head node (they have its raylet socket) that present a
    # wrong token or none are refused; the cluster's token connects.
    answers = run_script_job(dashboard, RAY_TOKEN, GCS_PROBE, timeout=420)
    print(f"GCS answers: {answers}")
    assert answers["the cluster's token"]["connected"], answers
    for case in ("wrong token", "no token"):
        assert not answers[case]["connected"] and answers[case]["code"] != 0, answers[case]
        assert "InvalidAuthToken" in answers[case]["error"], answers[case]
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


class NodeWatch:
    """Counts what a RayCluster leaves on the node: containers with a running task (as
    containerd reports them) and pod network namespaces; records the most seen meanwhile."""

    def __init__(self, dev) -> None:
        import threading

        from ml_assets_tests.kube.cluster import pod_network_namespaces

        self.dev, self.netns = dev, pod_network_namespaces
        self.tasks_before, self.netns_before = set(dev.tasks()), self.netns()
        self.most_tasks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):  # sampling a count, not waiting for an event
            self.most_tasks = max(self.most_tasks, len(set(self.dev.tasks()) - self.tasks_before))

    def settled(self) -> bool:
        return set(self.dev.tasks()) <= self.tasks_before and self.netns() <= self.netns_before

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def assert_node_clean(admin, watch: NodeWatch) -> None:
    from ml_assets_tests.kube.conftest import list_rayclusters

    watch.stop()
    assert list_rayclusters(admin) == []
    wait_for(lambda: not ray_pods(admin), 90, "the cluster's pods to be deleted")
    wait_for(watch.settled, 90, "the cluster's containers and pod network namespaces to go")


def test_a_cluster_not_ready_in_time_goes_with_its_pods_containers_and_namespaces(
    real_operator, instance
):
    import dagster as dg

    from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
    from ml_assets_tests.kube.probe_defs import cluster_probe

    admin = real_operator.control_plane.api_client()
    watch = NodeWatch(real_operator)
    resource = KubeRayEphemeralCluster(
        profile="dev", kube_config=str(real_operator.kubeconfig), ray_auth_token=RAY_TOKEN,
        timeout=15,  # the dev profile needs 25 to 60 s here: its containers start meanwhile
    )  # fmt: skip
    result = dg.materialize(
        [cluster_probe], resources={"ray_cluster": resource}, instance=instance,
        raise_on_error=False,
    )  # fmt: skip
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    assert not result.success
    assert "was not ready within 15s" in "\n".join(e.to_string() for e in errors if e)
    assert_node_clean(admin, watch)
    assert watch.most_tasks >= 1  # the head's container ran before the timeout


@pytest.mark.slow
def test_cancelling_a_run_while_the_real_operator_creates_its_cluster_deletes_it(
    real_operator, tmp_path
):
    """SIGINT, what Dagster's run cancellation sends the run process, while the pods start."""
    admin = real_operator.control_plane.api_client()
    watch = NodeWatch(real_operator)
    env = {"KUBECONFIG": str(real_operator.kubeconfig), "ML_ASSETS_RAY": "kuberay",
           "ML_ASSETS_RAY_PROFILE": "dev", "RAY_AUTH_TOKEN": RAY_TOKEN}  # fmt: skip
    cancel_probe_run(admin, tmp_path / "dagster_home", env, lambda: watch.most_tasks >= 1)
    assert_node_clean(admin, watch)
