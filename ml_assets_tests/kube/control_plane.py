"""The development cluster's control plane: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler, inside the cluster's network namespace.

The binaries are Kubernetes 1.34 built from its Go modules and Debian's etcd, by
`devcluster/build_binaries.sh` (once, cached outside the repository). The API server listens on
the node's address only, with the Node and RBAC authorizers, Pod Security admission (on by default
since 1.25), NodeRestriction and ServiceAccount token signing. Every component has an identity of
its own (static tokens: the development cluster has no bootstrap flow), and the controller manager
uses a credential per controller, as kubeadm sets it up.
"""

import base64
import os
import secrets
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ml_assets_tests.kube.netns import NodeNetwork
from ml_assets_tests.kube.pki import ClusterPki

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "devcluster" / "build_binaries.sh"
API_PORT = 6443
# name -> (user, groups) of each static token; the tokens themselves are random per cluster.
IDENTITIES = {
    "admin": ("admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kube-proxy": ("system:kube-proxy", ""),
}


def build_binaries() -> Path:
    """The folder with bin/, crds/, kuberay-rbac/ and cni/ of the pinned versions; builds them
    the first time (about 10 minutes on 2 cores), else returns at once."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the cluster's binaries failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class Daemons:
    """Processes started in the cluster's namespace, each logging to `<root>/<name>.log`."""

    root: Path
    network: NodeNetwork
    bin_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], binary: str | None = None) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (owned by the process)
        path = f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self.processes[name] = subprocess.Popen(
            self.network.command(str(self.bin_dir / (binary or name)), *args),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": path, "HOME": str(self.root)},
        )  # nsenter execs the daemon: the PID is the daemon's

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.root / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self, name: str, timeout: float = 15) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kubeconfig(server: str, ca: Path, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dev",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "user"}}],
        "current-context": "dev",
    }


class ControlPlane:
    """Starts the control plane in `network`; `kubeconfig_for(name)` writes an identity's file."""

    def __init__(self, root: Path, bin_dir: Path, network: NodeNetwork, node_name: str) -> None:
        self.root = root
        self.network = network
        self.daemons = Daemons(root, network, bin_dir)
        self.pki = ClusterPki(root / "pki")
        self.url = f"https://{network.node_address}:{API_PORT}"
        self.tokens = {name: secrets.token_hex(16) for name in [*IDENTITIES, "node"]}
        self.identities = dict(IDENTITIES, node=(f"system:node:{node_name}", "system:nodes"))
        self.kubeconfig = self.kubeconfig_for("admin")

    def kubeconfig_for(self, identity: str) -> Path:
        path = self.root / f"{identity}.kubeconfig"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            config = kubeconfig(self.url, self.pki.ca, self.tokens[identity])
            path.write_text(yaml.safe_dump(config))
        return path

    def start_api_server(self, timeout: float = 60.0) -> None:
        sa_key, sa_pub = self.pki.service_account_keys()
        serving = self.pki.issue(
            "apiserver", "kube-apiserver",
            server_names=[self.network.node_address, self.network.api_service_ip, "kubernetes",
                          "kubernetes.default", "kubernetes.default.svc",
                          "kubernetes.default.svc.cluster.local"],
        )  # fmt: skip
        kubelet_client = self.pki.issue(
            "kubelet-client", "kube-apiserver-kubelet-client",
            organization="system:masters", client=True,
        )  # fmt: skip
        (self.root / "tokens.csv").write_text(
            "".join(
                f'{self.tokens[name]},{user},{user},"{groups}"\n'
                for name, (user, groups) in self.identities.items()
            )
        )
        self.daemons.spawn(
            "etcd",
            [
                "--data-dir", str(self.root / "etcd"),
                "--listen-client-urls", "http://127.0.0.1:2379",
                "--advertise-client-urls", "http://127.0.0.1:2379",
                "--listen-peer-urls", "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--initial-cluster", "default=http://127.0.0.1:2380",
                "--listen-metrics-urls", "http://127.0.0.1:2381",
            ],
        )  # fmt: skip
        self.daemons.spawn(
            "kube-apiserver",
            [
                "--etcd-servers", "http://127.0.0.1:2379",
                "--bind-address", self.network.node_address,
                "--advertise-address", self.network.node_address,
                "--secure-port", str(API_PORT),
                "--tls-cert-file", str(serving[0]),
                "--tls-private-key-file", str(serving[1]),
                "--client-ca-file", str(self.pki.ca),
                "--token-auth-file", str(self.root / "tokens.csv"),
                "--authorization-mode", "Node,RBAC",
                "--enable-admission-plugins", "NodeRestriction",
                "--service-account-key-file", str(sa_pub),
                "--service-account-signing-key-file", str(sa_key),
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--api-audiences", "https://kubernetes.default.svc",
                "--service-cluster-ip-range", self.network.service_cidr,
                "--kubelet-client-certificate", str(kubelet_client[0]),
                "--kubelet-client-key", str(kubelet_client[1]),
                # Node names are not in any resolver: reach kubelets by their address.
                "--kubelet-preferred-address-types", "InternalIP",
                "--allow-privileged=false",
            ],
        )  # fmt: skip
        self._wait_ready(timeout)
        self._sa_key = sa_key

    def start_controllers(self, timeout: float = 60.0) -> None:
        self.daemons.spawn(
            "kube-controller-manager",
            [
                "--kubeconfig", str(self.kubeconfig_for("kube-controller-manager")),
                "--service-account-private-key-file", str(self._sa_key),
                "--root-ca-file", str(self.pki.ca),
                "--cluster-signing-cert-file", str(self.pki.ca),
                "--cluster-signing-key-file", str(self.pki.directory / "ca.key"),
                "--service-cluster-ip-range", self.network.service_cidr,
                # Without a credential per controller the node's not-ready taint is never lifted.
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--secure-port", "0",
            ],
        )  # fmt: skip
        self.daemons.spawn(
            "kube-scheduler",
            [
                "--kubeconfig", str(self.kubeconfig_for("kube-scheduler")),
                "--leader-elect=false",
                "--bind-address", "127.0.0.1",
            ],
        )  # fmt: skip
        self._wait_default_service_account(timeout)

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.tokens['admin']}"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.daemons.check_alive()
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)  # polling the readiness endpoint
        raise TimeoutError(f"kube-apiserver at {self.url} not ready after {timeout:.0f}s")

    def _wait_default_service_account(self, timeout: float) -> None:
        """Pods need the `default` ServiceAccount, which the controller manager creates."""
        from kubernetes.client import ApiException

        core = self.api_client_core()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.daemons.check_alive()
            try:
                core.read_namespaced_service_account("default", "default")
                return
            except ApiException as error:
                if error.status != 404:
                    raise
                time.sleep(0.2)  # polling until the service-account controller has run
        raise TimeoutError("the controller manager did not create the default ServiceAccount")

    def api_client(self, token: str | None = None):
        """A kubernetes ApiClient as admin, or as whoever `token` belongs to."""
        from kubernetes import config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        if token is not None:
            # The kubeconfig loader re-sets its own token before every call unless unhooked.
            api.configuration.refresh_api_key_hook = None
            api.configuration.api_key = {"BearerToken": f"Bearer {token}"}
        return api

    def api_client_core(self, token: str | None = None):
        from kubernetes import client

        return client.CoreV1Api(self.api_client(token))

    def stop(self) -> None:
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            self.daemons.stop(name)
