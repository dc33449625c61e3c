"""A stand-in for the KubeRay operator's visible behaviour, against the real API server.

Used only where the step must be a Ray driver on this machine (the materialization tests: a
driver outside the cluster's pods cannot join it until the step's Ray work is submitted into the
cluster); the rest of the kube tier runs the real operator, scaled to 0 while this one runs.
This controller watches RayClusters as the operator does and, for each one, creates the head
Service and head Pod owned by the cluster (the pod never scheduled: its Ray head runs here; the
real garbage collector removes both with the cluster), starts a real local Ray head, and writes
`.status` as KubeRay does (`state: ready`, head service name and IP, endpoints). When the cluster
is deleted, it stops that Ray head. `mode` lets a test hold clusters unready (readiness timeout,
cancellation during creation) or skip Ray for tests that only need the objects.
"""

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"
RAY = str(Path(sys.executable).parent / "ray")
AUTH_TOKEN_KEY = "auth_token"  # key of the token in the Secret named by authOptions.secretName
NEVER_SCHEDULED = {"ml-assets.io/stand-in-head": "never-scheduled"}  # no node has this label


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    process: subprocess.Popen
    temp_dir: Path
    gcs_port: int

    def stop(self) -> None:
        # A deleted pod's processes die; `ray start --block` takes ~20 s over SIGTERM, so kill.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Ray's daemons may outlive `ray start --block`; stop whatever still uses this temp dir.
        _kill_processes_mentioning(str(self.temp_dir))
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _kill_processes_mentioning(marker: str) -> None:
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or ()):
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


class FakeKubeRayOperator:
    """Reconciles RayClusters in every namespace on a background thread; `stop()` ends it all."""

    def __init__(self, api_client, *, ray_cpus: int = 2, mode: str = "ready") -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ray_cpus = ray_cpus
        self.mode = mode  # "ready": real Ray head; "never_ready": objects only, no status.state
        self.heads: dict[tuple[str, str], RayHead] = {}
        self.seen: set[str] = set()  # uids already reconciled
        self.created: list[dict] = []  # name and labels of every cluster reconciled, in order
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kuberay", daemon=True)

    def start(self) -> "FakeKubeRayOperator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=15)
        for head in list(self.heads.values()):
            head.stop()
        self.heads.clear()

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client import ApiException

        resource_version = ""  # resume each short watch where the last ended: miss no event
        while not self._stopping.is_set():
            try:
                stream = watch.Watch().stream(
                    self.custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    PLURAL,
                    timeout_seconds=1,
                    resource_version=resource_version,
                )
                for event in stream:
                    if self._stopping.is_set():
                        break
                    if event["type"] == "ERROR":  # e.g. 410 Expired: relist from now
                        resource_version = ""
                        break
                    resource_version = event["object"]["metadata"]["resourceVersion"]
                    self._handle(event["type"], event["object"])
            except ApiException as error:
                if error.status == 410:  # too old: start over from the current state
                    resource_version = ""
                elif not self._stopping.is_set():
                    self.errors.append(error)
            except Exception as error:  # keep reconciling, as an operator does; tests read errors
                if not self._stopping.is_set():
                    self.errors.append(error)
                    time.sleep(0.2)

    def _handle(self, kind: str, cluster: dict) -> None:
        meta = cluster["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            head = self.heads.pop(key, None)
            if head is not None:
                head.stop()
            return
        if meta["uid"] in self.seen:
            return
        self.seen.add(meta["uid"])
        self.created.append({"name": meta["name"], "labels": dict(meta.get("labels") or {})})
        self._create_head_objects(cluster)
        if self.mode == "ready":
            head = self._start_ray_head(meta["name"], self._auth_environment(cluster))
            self.heads[key] = head
            self._write_status(cluster, head.gcs_port)
        else:
            self._write_pending_status(cluster)

    def _owner_reference(self, cluster: dict) -> dict:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RayCluster",
            "name": cluster["metadata"]["name"],
            "uid": cluster["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _create_head_objects(self, cluster: dict) -> None:
        name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
        labels = {"ray.io/cluster": name, "ray.io/node-type": "head"}
        owner = [self._owner_reference(cluster)]
        head_template = cluster["spec"]["headGroupSpec"]["template"]
        self.core.create_namespaced_service(
            namespace,
            {
                "metadata": {
                    "name": f"{name}-head-svc",
                    "labels": labels,
                    "ownerReferences": owner,
                },
                "spec": {
                    "selector": labels,
                    "ports": [
                        {"name": "gcs", "port": 6379},
                        {"name": "dashboard", "port": 8265},
                        {"name": "client", "port": 10001},
                    ],
                },
            },
        )
        pod_labels = {**head_template.get("metadata", {}).get("labels", {}), **labels}
        self.core.create_namespaced_pod(
            namespace,
            {
                "metadata": {
                    "name": f"{name}-head",
                    "labels": pod_labels,
                    "ownerReferences": owner,
                },
                # The stand-in's Ray head runs on the machine; this pod only shows the object.
                "spec": {**head_template["spec"], "nodeSelector": NEVER_SCHEDULED},
            },
        )

    def _auth_environment(self, cluster: dict) -> dict[str, str]:
        """KubeRay's `authOptions`: token mode hands the Secret's token to every Ray node."""
        options = cluster["spec"].get("authOptions") or {}
        if options.get("mode") != "token":
            return {"RAY_AUTH_MODE": options.get("mode", "disabled")}
        namespace = cluster["metadata"]["namespace"]
        secret = self.core.read_namespaced_secret(options["secretName"], namespace)
        token = base64.b64decode(secret.data[AUTH_TOKEN_KEY]).decode()
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}

    def _start_ray_head(self, name: str, auth_env: dict[str, str]) -> RayHead:
        temp_dir = Path(tempfile.mkdtemp(prefix=f"ray-{name[:20]}-", dir="/tmp"))
        port = _free_port()
        log = open(temp_dir / "ray-start.log", "w")  # noqa: SIM115 (owned by the process)
        process = subprocess.Popen(
            [
                RAY, "start", "--head", "--block",
                "--port", str(port),
                "--num-cpus", str(self.ray_cpus),
                "--temp-dir", str(temp_dir),
                "--include-dashboard", "false",
                "--disable-usage-stats",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **auth_env},
        )  # fmt: skip
        head = RayHead(process, temp_dir, port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError((temp_dir / "ray-start.log").read_text()[-2000:])
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return head
            time.sleep(0.2)  # polling the GCS port, as a readiness probe would
        head.stop()
        raise TimeoutError(f"Ray head for {name} did not open port {port}")

    def _write_status(self, cluster: dict, gcs_port: int) -> None:
        name = cluster["metadata"]["name"]
        groups = cluster["spec"].get("workerGroupSpecs") or []
        replicas = sum(group.get("replicas", 0) for group in groups)
        status = {
            "state": "ready",
            "desiredWorkerReplicas": replicas,
            "readyWorkerReplicas": replicas,
            "availableWorkerReplicas": replicas,
            "head": {
                "serviceName": f"{name}-head-svc",
                "serviceIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "podName": f"{name}-head",
            },
            "endpoints": {"gcs-server": str(gcs_port), "dashboard": "8265", "client": "10001"},
            "conditions": [
                {
                    "type": "HeadPodReady",
                    "status": "True",
                    "reason": "HeadPodRunningAndReady",
                    "message": "Head pod is running and ready",
                    "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ],
        }
        self._patch_status(cluster, status)

    def _write_pending_status(self, cluster: dict) -> None:
        self._patch_status(
            cluster,
            {
                "desiredWorkerReplicas": sum(
                    g.get("replicas", 0) for g in cluster["spec"].get("workerGroupSpecs") or []
                ),
                "conditions": [
                    {
                        "type": "HeadPodReady",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/0 nodes are available (held by the test)",
                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                ],
            },
        )

    def _patch_status(self, cluster: dict, status: dict) -> None:
        from kubernetes.client import ApiException

        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                cluster["metadata"]["namespace"],
                PLURAL,
                cluster["metadata"]["name"],
                {"status": status},
            )
        except ApiException as error:
            if error.status != 404:  # deleted while we reconciled: nothing to report on
                raise
