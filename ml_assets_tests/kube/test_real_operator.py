"""The real KubeRay operator on the real node: the `dev` profile (the one that fits a 2-core
machine) gives a RayCluster whose head and worker run as pods under Pod Security `restricted`,
and a Ray job submitted with the cluster's token runs a task on the worker pod."""

import json
import shlex
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

# The job's driver runs in the head pod (num-cpus 0 there), so its one task lands on a worker.
PROBE = """
import json, os, socket, ray
ray.init()
@ray.remote(num_cpus=0.5)
def where():
    return {"host": socket.gethostname(), "uid": os.getuid(), "gid": os.getgid()}
print("PROBE " + json.dumps(ray.get(where.remote())))
"""


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
    from ray.job_submission import JobStatus, JobSubmissionClient

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
    refused = JobSubmissionClient  # a client without the token may not even list jobs
    with pytest.raises(Exception, match="401|403|[Uu]nauthori"):
        refused(dashboard).list_jobs()

    jobs = JobSubmissionClient(dashboard, headers={"Authorization": f"Bearer {RAY_TOKEN}"})
    job = jobs.submit_job(entrypoint=f"python -c {shlex.quote(PROBE)}")
    final = wait_for(
        lambda: (s := jobs.get_job_status(job)).is_terminal() and s, 180, f"Ray job {job}"
    )
    logs = jobs.get_job_logs(job)
    assert final == JobStatus.SUCCEEDED, logs[-3000:]
    (line,) = [line for line in logs.splitlines() if line.startswith("PROBE ")]
    ran = json.loads(line.removeprefix("PROBE "))
    assert ran == {"host": worker.metadata.name, "uid": 1000, "gid": 100}
    print(f"RayCluster {name}: ready {ready_s:.1f}s after the request")

    client.CustomObjectsApi(admin).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
    wait_for(lambda: not ray_pods(admin), 60, "the cluster's pods to be deleted")
