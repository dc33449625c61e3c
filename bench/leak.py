"""Leak benchmark: 30 `kuberay` materializations with failures injected at random lifecycle points.

Against the kube tier's real one-node cluster and the real KubeRay operator (their binaries built
once, cached), with the `dev` profile: each materialization's cluster is a head pod and a worker
pod, and its Ray work a Ray job on the head (the cluster check). Each draws one injection point:
after the create request, during the readiness wait, before connecting, in the step after its
Ray job, or a failing first delete call (a transient 503); some draw none. The injected error is
a plain exception or Dagster's interruption (what a run cancellation raises). After each, the
benchmark waits until the cluster's pods are gone (the next cluster needs the node's CPUs) and
times that. The goal: zero RayClusters, pods, services, containers with a task in containerd,
pod network namespaces and Ray processes left at the end.

    .venv/bin/python -m bench.leak [--runs 30] [--seed 7]
"""

import argparse
import random
import secrets
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError

from bench.common import write_result
from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.defs.ray_resource import run_driver
from ml_assets_tests.kube.cluster import DevCluster, pod_network_namespaces
from ml_assets_tests.kube.conftest import (
    K8S_DIR,
    NAMESPACE,
    apply,
    create_ray_token_secret,
    list_rayclusters,
    manifests,
)
from ml_assets_tests.kube.probe_defs import CHECK

POINTS = ("none", "create", "wait", "connect", "run", "delete")


class FaultyCluster(KubeRayEphemeralCluster):
    """The real resource with one failure injected at `inject`."""

    inject: str = "none"
    interrupt: bool = False

    def _boom(self, where: str) -> None:
        if self.inject == where:
            error = DagsterExecutionInterruptedError if self.interrupt else RuntimeError
            raise error(f"injected failure at {where}")

    def create(self, context: Any) -> None:
        super().create(context)
        self._boom("create")  # the API object exists: the worst moment to fail

    def wait(self, context: Any) -> None:
        self._boom("wait")
        super().wait(context)

    def connect(self, context: Any):  # pyright: ignore[reportIncompatibleVariableOverride]
        self._boom("connect")
        return super().connect(context)

    def delete(self, context: Any) -> None:
        if self.inject == "delete":
            from kubernetes.client import ApiException

            real = self.client.delete

            def flaky(*args, **kwargs):
                self.client.delete = real
                raise ApiException(status=503, reason="injected: API server unavailable")

            self.client.delete = flaky
        super().delete(context)


@dg.asset
def leak_probe(context: dg.AssetExecutionContext, ray_cluster: FaultyCluster):
    run_driver(ray_cluster, context, CHECK, {})
    if ray_cluster.inject == "run":
        error = DagsterExecutionInterruptedError if ray_cluster.interrupt else RuntimeError
        raise error("injected failure at run")
    return dg.MaterializeResult()  # a step that opened a Pipes session must report a result


def ray_processes() -> list[str]:
    """Ray's daemons anywhere on this machine (a pod's processes are visible from the host)."""
    import psutil

    names = ("raylet", "gcs_server")
    return [p.info["name"] for p in psutil.process_iter(["name"]) if p.info["name"] in names]


def cluster_objects(admin) -> dict[str, int]:
    from kubernetes import client

    core = client.CoreV1Api(admin)
    selector = "ray.io/cluster"
    return {
        "rayclusters": len(list_rayclusters(admin)),
        "pods": len(core.list_namespaced_pod(NAMESPACE, label_selector=selector).items),
        "services": len(core.list_namespaced_service(NAMESPACE, label_selector=selector).items),
    }


def node_leftovers(cluster, tasks_before: set, netns_before: set) -> dict[str, int]:
    """What the runs left on the node and this host, once containerd and the CNI plugin (which
    finish after the API objects go) have had a minute."""
    settle = time.monotonic() + 60
    while time.monotonic() < settle and (
        set(cluster.tasks()) - tasks_before or pod_network_namespaces() - netns_before
    ):
        time.sleep(0.5)  # polling the node until its containers and namespaces are gone
    return {
        "containers_left": len(set(cluster.tasks()) - tasks_before),
        "pod_network_namespaces_left": len(pod_network_namespaces() - netns_before),
        "ray_processes_left": len(ray_processes()),
    }


def wait_until_gone(admin, timeout: float = 120) -> float:
    """Seconds until the namespace holds no RayCluster and no Ray pod or service."""
    began = time.monotonic()
    while any(cluster_objects(admin).values()) and time.monotonic() - began < timeout:
        time.sleep(0.2)  # polling the API until the garbage collector and kubelet are done
    return time.monotonic() - began


def main(runs: int = 30, seed: int = 7) -> dict:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="leak-bench-"))
    cluster = DevCluster(root / "kube").start()
    started_in = sum(cluster.timings.values())
    plane = cluster.control_plane
    assert plane is not None
    admin = plane.api_client()
    apply(admin, manifests(K8S_DIR / "namespace.yaml"))
    apply(admin, manifests(K8S_DIR / "rbac.yaml"))
    token = secrets.token_hex(32)
    create_ray_token_secret(admin, token)
    cluster.provide_environment(NAMESPACE)
    tasks_before, netns_before = set(cluster.tasks()), pod_network_namespaces()
    outcomes: Counter = Counter()
    seconds: list[float] = []
    teardown: list[float] = []
    payload: dict = {}
    try:
        (root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
            for index in range(runs):
                point, interrupt = rng.choice(POINTS), rng.random() < 0.3
                resource = FaultyCluster(
                    profile="dev",
                    kube_config=str(plane.kubeconfig),
                    head_address="service-ip",  # this host is routed into the cluster network
                    ray_auth_token=token,
                    inject=point,
                    interrupt=interrupt,
                )
                began = time.monotonic()
                result = dg.materialize(
                    [leak_probe],
                    resources={"ray_cluster": resource},
                    instance=instance,
                    raise_on_error=False,
                )
                seconds.append(time.monotonic() - began)
                teardown.append(wait_until_gone(admin))
                kind = "-" if point == "none" else "error"
                if interrupt and point not in ("none", "delete"):
                    kind = "interrupt"
                outcomes[f"{point}/{kind}/{'ok' if result.success else 'failed'}"] += 1
                print(
                    f"{index + 1:2d}/{runs} inject={point:8s} {kind:9s} "
                    f"success={result.success!s:5s} {seconds[-1]:5.1f}s, pods gone "
                    f"{teardown[-1]:4.1f}s later; left: {cluster_objects(admin)}",
                    flush=True,
                )
        left = cluster_objects(admin)
        payload |= {
            "runs": runs,
            "seed": seed,
            "profile": "dev",
            "outcomes": dict(sorted(outcomes.items())),
            **{f"{kind}_left": count for kind, count in left.items()},
            **node_leftovers(cluster, tasks_before, netns_before),
            "cluster_start_s": round(started_in, 2),
            "materialization_s_mean": round(sum(seconds) / len(seconds), 2),
            "materialization_s_max": round(max(seconds), 2),
            "pods_gone_after_s_mean": round(sum(teardown) / len(teardown), 2),
            "pods_gone_after_s_max": round(max(teardown), 2),
        }
    finally:
        # A second Ctrl-C must not cut the stop short: the cluster's daemons would stay.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        payload["cluster_stop_left"] = cluster.stop()
    print(
        f"\n{runs} materializations; left: {payload['rayclusters_left']} RayClusters, "
        f"{payload['pods_left']} pods, {payload['services_left']} services, "
        f"{payload['containers_left']} containers, {payload['pod_network_namespaces_left']} pod "
        f"network namespaces, {payload['ray_processes_left']} Ray processes. Cluster started in "
        f"{started_in:.1f}s; stopping it left {payload['cluster_stop_left']}."
    )
    write_result("leak", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.seed)
