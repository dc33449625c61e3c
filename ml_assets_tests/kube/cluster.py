"""A one-node Kubernetes 1.34 cluster on this machine, real in every part: control plane, kubelet,
containerd + runc, the CNI bridge, kube-proxy, CoreDNS and the KubeRay operator as pods.

    python -m ml_assets_tests.kube.cluster up      # prints the kubeconfig path; `make kube-up`
    python -m ml_assets_tests.kube.cluster down    # stops it by PID; `make kube-down`

Everything runs inside one network namespace (`netns.py`), every process is stopped by PID, and
`stop()` then checks that nothing is left: no process in the namespace, no container in
containerd, no pod network namespace, no cgroup. Phases are timed in `timings` (seconds).
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ml_assets_tests.kube import addons
from ml_assets_tests.kube.control_plane import ControlPlane, build_binaries
from ml_assets_tests.kube.crds import install_kuberay_crds
from ml_assets_tests.kube.environment import build_environment
from ml_assets_tests.kube.images import Image, binary_image, ray_base_image
from ml_assets_tests.kube.netns import NETNS_DIR, NodeNetwork
from ml_assets_tests.kube.node import NodeFiles

CACHE = Path(
    os.environ.get("ML_ASSETS_DEVCLUSTER_CACHE", Path.home() / ".cache/ml_assets/devcluster")
)
NODE_NAME = "dev-node"
K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
STATE_FILE = Path("/run/ml-assets-devcluster.json")  # what `down` reads to find `up`'s cluster


def _wait(what: str, condition, timeout: float, check=lambda: None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        value = condition()
        if value:
            return value
        time.sleep(interval)  # polling cluster state
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def apply(api_client, documents: list[dict]) -> None:
    """Creates plain objects (core, apps, RBAC) as `kubectl create` would."""
    from kubernetes import utils

    for document in documents:
        utils.create_from_dict(api_client, document)


@dataclass
class DevCluster:
    root: Path
    progress: object = print
    watch_namespaces: tuple[str, ...] = ("ml-assets",)
    image_cache: Path = CACHE / "images"
    environment_cache: Path = CACHE / "envs"
    timings: dict[str, float] = field(default_factory=dict)
    network: NodeNetwork | None = None
    control_plane: ControlPlane | None = None
    node: NodeFiles | None = None
    images: dict[str, Image] = field(default_factory=dict)
    environment: Path | None = None
    _pod_netns_before: set[str] = field(default_factory=set)

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.kubeconfig

    def _phase(self, name: str, began: float) -> None:
        self.timings[name] = round(time.monotonic() - began, 1)
        self.progress(f"devcluster: {name} {self.timings[name]}s")

    def start(self) -> "DevCluster":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        began = time.monotonic()
        built = build_binaries()
        bin_dir = built / "bin"
        self._phase("binaries", began)

        began = time.monotonic()
        image_cache = self.image_cache
        self.images = {
            "pause": binary_image(image_cache, "pause", bin_dir / "pause", "/pause"),
            "coredns": binary_image(image_cache, "coredns", bin_dir / "coredns", "/coredns"),
            "operator": binary_image(
                image_cache, "kuberay-operator", bin_dir / "ray-operator", "/manager"
            ),
            "ray": ray_base_image(image_cache, progress=self.progress),
        }
        self.environment = build_environment(self.environment_cache, progress=self.progress)
        self._phase("images_built", began)

        began = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        self._pod_netns_before = pod_network_namespaces()
        self.network = NodeNetwork.create()
        plane = self.control_plane = ControlPlane(
            self.root / "control-plane", bin_dir, self.network, NODE_NAME
        )
        plane.start_api_server()
        install_kuberay_crds(plane.api_client(), built / "crds")
        plane.start_controllers()
        self._phase("control_plane_ready", began)

        began = time.monotonic()
        node = self.node = NodeFiles(self.root / "node", self.network)
        node.write(
            bin_dir, built / "cni", self.images["pause"].name, plane.pki.ca,
            plane.kubeconfig_for("node"), plane.kubeconfig_for("kube-proxy"), NODE_NAME,
        )  # fmt: skip
        daemons = plane.daemons
        daemons.spawn("containerd", node.containerd_args())
        _wait("containerd", lambda: node.ctr(bin_dir, "version").returncode == 0, 30,
              daemons.check_alive)  # fmt: skip
        imported = time.monotonic()
        for image in self.images.values():
            result = node.ctr(bin_dir, "images", "import", "--no-unpack=false", str(image.archive))
            if result.returncode != 0:
                raise RuntimeError(f"importing {image.name}: {result.stderr}")
        self.timings["images_imported"] = round(time.monotonic() - imported, 1)
        node.create_cgroups()
        daemons.spawn("kubelet", node.kubelet_args(NODE_NAME))
        daemons.spawn("kube-proxy", node.kube_proxy_args())
        core = plane.api_client_core()
        _wait("the node to be Ready", lambda: self._node_ready(core), 90, daemons.check_alive)
        self._phase("node_ready", began)

        began = time.monotonic()
        admin = plane.api_client()
        apply(admin, addons.coredns(self.network, self.images["coredns"].name))
        operator = addons.kuberay_operator(
            built / "kuberay-rbac", self.images["operator"].name, list(self.watch_namespaces)
        )
        apply(admin, operator)
        for namespace, name in (("kube-system", "coredns"),
                                (addons.OPERATOR_NAMESPACE, "kuberay-operator")):  # fmt: skip
            _wait(f"{namespace}/{name}", lambda n=namespace, d=name: self._available(n, d), 120,
                  daemons.check_alive)  # fmt: skip
        self._phase("addons_ready", began)

    def provide_environment(self, namespace: str, claim: str = "ml-assets-environment") -> None:
        """A read-only claim in `namespace` on the pods' Python environment (the `dev`
        profile's `environment_claim`), through a PersistentVolume on the node's folder."""
        from kubernetes import client

        assert self.control_plane is not None and self.environment is not None
        core = client.CoreV1Api(self.control_plane.api_client())
        volume = f"{claim}-{namespace}"
        core.create_persistent_volume(
            {
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadOnlyMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(self.environment), "type": "Directory"},
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            }
        )
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "volumeName": volume,
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            },
        )
        _wait(
            f"claim {namespace}/{claim} to be bound",
            lambda: (
                core.read_namespaced_persistent_volume_claim(claim, namespace).status.phase
                == "Bound"
            ),
            60,
        )

    def scale_operator(self, replicas: int, timeout: float = 60) -> None:
        """Runs the KubeRay operator (1) or stops it (0) and waits until that holds."""
        from kubernetes import client

        assert self.control_plane is not None
        api = self.control_plane.api_client()
        client.AppsV1Api(api).patch_namespaced_deployment_scale(
            "kuberay-operator", addons.OPERATOR_NAMESPACE, {"spec": {"replicas": replicas}}
        )
        core = client.CoreV1Api(api)

        def settled() -> bool:
            if replicas:
                return self._available(addons.OPERATOR_NAMESPACE, "kuberay-operator")
            pods = core.list_namespaced_pod(addons.OPERATOR_NAMESPACE).items
            return not pods

        _wait(f"the operator at {replicas} replicas", settled, timeout,
              self.control_plane.daemons.check_alive)  # fmt: skip

    @staticmethod
    def _node_ready(core) -> bool:
        for node in core.list_node().items:
            for condition in node.status.conditions or []:
                if condition.type == "Ready" and condition.status == "True":
                    taints = [t.key for t in node.spec.taints or []]
                    return "node.kubernetes.io/not-ready" not in taints
        return False

    def _available(self, namespace: str, name: str) -> bool:
        from kubernetes import client

        assert self.control_plane is not None
        apps = client.AppsV1Api(self.control_plane.api_client())
        status = apps.read_namespaced_deployment_status(name, namespace).status
        return bool(status.available_replicas)

    def tasks(self) -> list[str]:
        """Containers with a running task in containerd (processes, not just records)."""
        if self.node is None or self.control_plane is None:
            return []
        result = self.node.ctr(self.control_plane.daemons.bin_dir, "tasks", "list", "-q")
        return result.stdout.split()

    def stop(self) -> dict:
        """Stops everything by PID, removes the namespace, and reports what had to be forced or
        could not be removed (an empty dict when the stop was clean)."""
        left: dict[str, list] = {}
        plane, node, network = self.control_plane, self.node, self.network
        if plane is not None:
            # No controller or scheduler may replace the pods deleted next.
            for name in ("kube-controller-manager", "kube-scheduler"):
                plane.daemons.stop(name)
            if node is not None and "kubelet" in plane.daemons.processes:
                self._delete_pods(plane)
            for name in ("kube-proxy", "kubelet", "containerd"):
                plane.daemons.stop(name)
        if node is not None:
            left["killed_shims"] = self._kill_shims(node)
            left["killed_pod_processes"] = node.kill_cgroup_processes()
            left["cgroups"] = node.remove_cgroups()
            left["pod_network_namespaces"] = self._new_pod_network_namespaces()
            for name in left["pod_network_namespaces"]:
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            node.remove_state()
        if plane is not None:
            plane.stop()
        if network is not None:
            left["killed_in_netns"] = network.pids()
            for pid in left["killed_in_netns"]:
                os.kill(pid, signal.SIGKILL)
            network.remove()
            left["network_namespaces"] = [network.name] if NodeNetwork.exists(network.name) else []
        return {key: value for key, value in left.items() if value}

    def _delete_pods(self, plane: ControlPlane) -> None:
        """Deletes every pod and waits until no container runs, so that the kubelet stops them
        the normal way (CNI teardown, pod network namespace removed) before the daemons stop."""
        from kubernetes import client

        core = client.CoreV1Api(plane.api_client())
        try:
            for namespace in core.list_namespace().items:
                core.delete_collection_namespaced_pod(
                    namespace.metadata.name, grace_period_seconds=0
                )
            # containerd kills a sandbox's pause process before it tears down the pod's network,
            # so an empty task list alone can come while a pod network namespace still exists.
            _wait(
                "every container to stop and its network namespace to go",
                lambda: not self.tasks() and not self._new_pod_network_namespaces(),
                60,
            )
        except Exception as error:  # stopping goes on; the checks after it report what stayed
            self.progress(f"devcluster: deleting pods failed: {error}")

    def _new_pod_network_namespaces(self) -> list[str]:
        return sorted(pod_network_namespaces() - self._pod_netns_before)

    @staticmethod
    def _kill_shims(node: NodeFiles) -> list[int]:
        """containerd's shims outlive it by design; they name the socket they were started for."""
        import psutil

        killed = []
        for process in psutil.process_iter(["cmdline"]):
            if str(node.runtime_socket) in " ".join(process.info["cmdline"] or ()):
                process.kill()
                killed.append(process.pid)
        return killed


def pod_network_namespaces() -> set[str]:
    return {path.name for path in NETNS_DIR.glob("cni-*")}


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def up(root: Path) -> int:
    """Starts a cluster and keeps it until SIGINT or SIGTERM (what `down` sends), then stops it."""
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        if Path(f"/proc/{state['pid']}").exists():
            print(f"a development cluster is up already (PID {state['pid']}); `down` stops it")
            return 1
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = DevCluster(root, progress=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        cluster.start()
        admin = cluster.control_plane.api_client()  # type: ignore[union-attr]
        for name in ("namespace.yaml", "rbac.yaml"):  # the project's namespace, as deployed
            apply(admin, [d for d in yaml.safe_load_all((K8S_DIR / name).read_text()) if d])
        cluster.provide_environment("ml-assets")
        STATE_FILE.write_text(json.dumps({"pid": os.getpid(), "root": str(root)}))
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("devcluster: up; `python -m ml_assets_tests.kube.cluster down` or Ctrl-C stops it",
              file=sys.stderr, flush=True)  # fmt: skip
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        left = cluster.stop()
        STATE_FILE.unlink(missing_ok=True)
        outcome = f"forced or left: {left}" if left else "nothing left"
        print(f"devcluster: stopped; {outcome}", file=sys.stderr)
    return 0


def down() -> int:
    if not STATE_FILE.exists():
        print("no development cluster is up")
        return 0
    pid = json.loads(STATE_FILE.read_text())["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        STATE_FILE.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + 120
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for `up` to finish stopping the cluster
    return 0 if not Path(f"/proc/{pid}").exists() else 1


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "up":
        return up(Path(os.environ.get("TMPDIR", "/tmp")) / f"ml-assets-devcluster-{os.getpid()}")
    if command == "down":
        return down()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
