"""Development cluster bring-up, cold and warm, broken down; a RayCluster's life on it; peak memory.

Two starts side by side in one run. Cold: the images (debootstrap root file system, the single
binary images) and the pods' Python environment built into empty folders; the Kubernetes, KubeRay
and CoreDNS binaries stay cached (their cold build is `make kube-binaries` on a fresh machine,
9 to 11 minutes on 2 cores). Warm: everything cached. Each start is broken into: binaries check,
image builds, control plane ready, image imports, node ready, CoreDNS and operator ready. On the
warm cluster, one RayCluster of the `dev` profile: request, ready, first task done (a Ray job on
the worker pod), deleted (its pods gone). Memory, sampled every 0.5 s: RSS of the cluster's
daemons plus the working set of its pods (memory cgroup usage less inactive file pages).

    .venv/bin/python -m bench.cluster_bringup
"""

import secrets
import tempfile
import threading
import time
from pathlib import Path

from bench.common import write_result
from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import load_profile
from ml_assets_tests.kube.cluster import DevCluster, apply
from ml_assets_tests.kube.conftest import (
    GROUP,
    K8S_DIR,
    NAMESPACE,
    PLURAL,
    VERSION,
    create_ray_token_secret,
    manifests,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.node import CGROUP_MOUNTS
from ml_assets_tests.kube.ray_probe import run_probe_job

MIB = 1 << 20


class MemorySampler:
    """Peak of (daemons' RSS + pods' working set), with its parts at the peak, in MiB."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.peak: dict[str, float] = {"total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _pods_working_set(self) -> float:
        node = self.cluster.node
        if node is None:
            return 0.0
        group = CGROUP_MOUNTS / "memory" / node.cgroup_name
        try:
            usage = int((group / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
        except OSError:
            return 0.0
        return (usage - int(stat.get("total_inactive_file", 0))) / MIB

    def _sample(self) -> dict[str, float]:
        import psutil

        parts: dict[str, float] = {}
        plane = self.cluster.control_plane
        for name, process in dict(plane.daemons.processes if plane else {}).items():
            try:
                parts[name] = psutil.Process(process.pid).memory_info().rss / MIB
            except psutil.Error:
                pass
        parts["pods"] = self._pods_working_set()
        parts["total"] = sum(parts.values())
        return parts

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._sample()
            if sample["total"] > self.peak["total"]:
                self.peak = {key: round(value, 1) for key, value in sample.items()}
            self._stop.wait(0.5)


def raycluster_life(cluster: DevCluster, token: str) -> dict[str, float]:
    from kubernetes import client

    assert cluster.control_plane is not None
    admin = cluster.control_plane.api_client()
    custom = client.CustomObjectsApi(admin)
    owner = ClusterOwner(run_id=f"bench-{secrets.token_hex(4)}", asset="probe", owner_uid="b0")
    manifest = render_raycluster(load_profile("dev"), owner)
    name = manifest["metadata"]["name"]
    began = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest)
    timings = {"request_s": round(time.monotonic() - began, 2)}

    def ready():
        cluster_object = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name
        )
        status = cluster_object.get("status") or {}
        return status.get("state") == "ready" and status

    status = wait_for(ready, 300, f"RayCluster {name} ready")
    timings["ready_s"] = round(time.monotonic() - began, 1)
    ran = run_probe_job(f"http://{status['head']['podIP']}:8265", token)
    timings["first_task_done_s"] = round(time.monotonic() - began, 1)
    assert "worker" in ran["host"], ran
    deleting = time.monotonic()
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    wait_for(lambda: not ray_pods(admin), 120, "the RayCluster's pods to go")
    timings["deleted_s"] = round(time.monotonic() - deleting, 1)
    return timings


def start(root: Path, cold: bool) -> DevCluster:
    kwargs = {}
    if cold:
        kwargs = {"image_cache": root / "images", "environment_cache": root / "envs"}
    return DevCluster(root / "cluster", **kwargs).start()  # type: ignore[arg-type]


def main() -> dict:
    token = secrets.token_hex(32)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bringup-") as temp:
        for label in ("cold", "warm"):
            root = Path(temp) / label
            began = time.monotonic()
            cluster = start(root, cold=label == "cold")
            total = time.monotonic() - began
            entry: dict = {"phases_s": dict(cluster.timings), "total_s": round(total, 1)}
            try:
                if label == "warm":
                    admin = cluster.control_plane.api_client()  # type: ignore[union-attr]
                    apply(admin, manifests(K8S_DIR / "namespace.yaml"))
                    apply(admin, manifests(K8S_DIR / "rbac.yaml"))
                    create_ray_token_secret(admin, token)
                    cluster.provide_environment(NAMESPACE)
                    with MemorySampler(cluster) as memory:
                        entry["raycluster"] = raycluster_life(cluster, token)
                    entry["peak_memory_mib"] = memory.peak
            finally:
                stopping = time.monotonic()
                entry["left_after_stop"] = cluster.stop()
                entry["stop_s"] = round(time.monotonic() - stopping, 1)
            results[label] = entry
            print(f"{label}: {entry}")
    cold, warm = results["cold"]["total_s"], results["warm"]["total_s"]
    results["cold_over_warm"] = round(cold / warm, 2)
    print(f"\nstart: cold {cold:.1f}s, warm {warm:.1f}s ({results['cold_over_warm']}x)")
    life = results["warm"]["raycluster"]
    print(
        f"RayCluster (dev profile): ready {life['ready_s']}s, first task done "
        f"{life['first_task_done_s']}s, deleted {life['deleted_s']}s after its delete; "
        f"peak memory {results['warm']['peak_memory_mib']} MiB"
    )
    write_result("cluster_bringup", results)
    return results


if __name__ == "__main__":
    main()
