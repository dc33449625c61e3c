"""Leak benchmark: 30 `kuberay` materializations with failures injected at random lifecycle points.

Against the kube tier's real cluster (its binaries built once, cached; the real operator scaled
to 0) and the KubeRay stand-in that starts a real Ray head per cluster on this machine, as the
step must be a Ray driver here. Each materialization draws one injection point: after the
create request, during the readiness wait, before connecting, in the step itself, or a failing
first delete call (a transient 503); some draw none. The injected error is a plain exception or
Dagster's interruption (what a run cancellation raises). The goal: zero RayClusters, zero Ray
heads and zero head pods/services left at the end.

    .venv/bin/python -m bench.leak [--runs 30] [--seed 7]
"""

import argparse
import random
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError

from bench.common import write_result
from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets_tests.kube.cluster import DevCluster
from ml_assets_tests.kube.conftest import (
    K8S_DIR,
    NAMESPACE,
    apply,
    create_ray_token_secret,
    list_rayclusters,
    manifests,
)
from ml_assets_tests.kube.fake_kuberay import FakeKubeRayOperator

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
    import ray

    assert ray.cluster_resources()["CPU"] > 0
    if ray_cluster.inject == "run":
        error = DagsterExecutionInterruptedError if ray_cluster.interrupt else RuntimeError
        raise error("injected failure at run")


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
    cluster.scale_operator(0)
    operator = FakeKubeRayOperator(plane.api_client()).start()
    outcomes: Counter = Counter()
    seconds: list[float] = []
    payload: dict = {}
    try:
        (root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
            for index in range(runs):
                point, interrupt = rng.choice(POINTS), rng.random() < 0.3
                resource = FaultyCluster(
                    kube_config=str(plane.kubeconfig),
                    connect_host="127.0.0.1",
                    driver="connect",  # the stand-in's head runs on this host
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
                kind = "-" if point == "none" else "error"
                if interrupt and point not in ("none", "delete"):
                    kind = "interrupt"
                outcomes[f"{point}/{kind}/{'ok' if result.success else 'failed'}"] += 1
                left = list_rayclusters(admin)
                print(
                    f"{index + 1:2d}/{runs} inject={point:8s} {kind:9s} "
                    f"success={result.success!s:5s} {seconds[-1]:5.1f}s clusters left={len(left)}"
                )
        operator.stop()
        from kubernetes import client

        core = client.CoreV1Api(admin)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            core.list_namespaced_pod(NAMESPACE, label_selector="ray.io/cluster").items
            or core.list_namespaced_service(NAMESPACE, label_selector="ray.io/cluster").items
        ):
            time.sleep(0.2)  # the garbage collector removes the owned pods and services
        payload |= {
            "runs": runs,
            "seed": seed,
            "outcomes": dict(sorted(outcomes.items())),
            "rayclusters_left": len(list_rayclusters(admin)),
            "ray_heads_left": len(operator.heads),
            "head_pods_left": len(
                core.list_namespaced_pod(NAMESPACE, label_selector="ray.io/cluster").items
            ),
            "head_services_left": len(
                core.list_namespaced_service(NAMESPACE, label_selector="ray.io/cluster").items
            ),
            "clusters_created": len(operator.created),
            "operator_errors": [repr(e) for e in operator.errors],
            "cluster_start_s": round(started_in, 2),
            "materialization_s_mean": round(sum(seconds) / len(seconds), 2),
            "materialization_s_max": round(max(seconds), 2),
        }
    finally:
        operator.stop()
        payload["cluster_stop_left"] = cluster.stop()
    print(
        f"\n{runs} materializations, {payload['clusters_created']} clusters created; left: "
        f"{payload['rayclusters_left']} RayClusters, {payload['ray_heads_left']} Ray heads, "
        f"{payload['head_pods_left']} pods, {payload['head_services_left']} services. "
        f"Cluster started in {started_in:.1f}s; stopping it left {payload['cluster_stop_left']}."
    )
    write_result("leak", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.seed)
