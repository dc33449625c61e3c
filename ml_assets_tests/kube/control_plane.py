"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager.

The binaries are Kubernetes 1.34 built from its Go modules and Debian's etcd, by
`devcluster/build_binaries.sh` (once, cached outside the repository). The API server runs with
the Node and RBAC authorizers, Pod Security admission (on by default since 1.25), NodeRestriction
and ServiceAccount token signing; the controller manager runs the namespace, service-account and
garbage-collector controllers with a credential per controller, so owner references cascade as
on a real cluster. There is no kubelet or scheduler yet: pods are admitted, then stay Pending,
which is all the KubeRay stand-in (`fake_kuberay.py`) needs.
"""

import base64
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "devcluster" / "build_binaries.sh"
ADMIN_TOKEN = "ml-assets-test-admin"  # a static token in system:masters, only on 127.0.0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_binaries() -> Path:
    """The folder with bin/ and crds/ of the pinned versions; builds them the first time (about
    10 minutes on 2 cores: Kubernetes, the KubeRay operator, CoreDNS), else returns at once."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the cluster's binaries failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@dataclass
class ControlPlane:
    """Three processes and the kubeconfig that reaches them; `stop()` kills them by PID."""

    root: Path
    bin_dir: Path
    url: str = ""
    kubeconfig: Path = field(init=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_in_s: float = 0.0

    def __post_init__(self) -> None:
        self.kubeconfig = self.root / "admin.kubeconfig"

    def start(self, timeout: float = 60.0, before_controllers=None) -> "ControlPlane":
        """Start all three; `before_controllers(api_client)` runs between the API server and the
        controller manager: CRDs installed there are in the garbage collector's first discovery
        (it re-discovers only every 30 s)."""
        began = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        etcd_port, etcd_peer, api_port = _free_port(), _free_port(), _free_port()
        sa_key, sa_pub = _write_service_account_keys(self.root)
        (self.root / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')
        self._spawn(
            "etcd",
            [
                "--data-dir", str(self.root / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
            ],
        )  # fmt: skip
        self._spawn(
            "kube-apiserver",
            [
                "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(api_port),
                "--cert-dir", str(self.root / "certs"),
                "--token-auth-file", str(self.root / "tokens.csv"),
                "--authorization-mode", "Node,RBAC",
                "--enable-admission-plugins", "NodeRestriction",
                "--service-account-key-file", str(sa_pub),
                "--service-account-signing-key-file", str(sa_key),
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--api-audiences", "https://kubernetes.default.svc",
                "--service-cluster-ip-range", "10.96.0.0/24",
            ],
        )  # fmt: skip
        self.url = f"https://127.0.0.1:{api_port}"
        self._wait_ready(timeout - (time.monotonic() - began))
        self._write_kubeconfig()
        if before_controllers is not None:
            before_controllers(self.api_client())
        self._spawn(
            "kube-controller-manager",
            [
                "--kubeconfig", str(self.kubeconfig),
                "--service-account-private-key-file", str(sa_key),
                "--root-ca-file", str(self.root / "certs" / "apiserver.crt"),
                "--controllers", "namespace,serviceaccount,serviceaccount-token,garbagecollector",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--secure-port", "0",
            ],
        )  # fmt: skip
        self._wait_default_service_account(timeout - (time.monotonic() - began))
        self.started_in_s = time.monotonic() - began
        return self

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (owned by the process)
        self.processes[name] = subprocess.Popen(
            [str(self.bin_dir / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.root / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the self-signed serving cert is not written yet
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)  # polling the readiness endpoint
        raise TimeoutError(f"kube-apiserver at {self.url} not ready after {timeout:.0f}s")

    def _write_kubeconfig(self) -> None:
        ca = (self.root / "certs" / "apiserver.crt").read_bytes()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _wait_default_service_account(self, timeout: float) -> None:
        """Pods need the `default` ServiceAccount, which the controller manager creates."""
        from kubernetes.client import ApiException

        core = self.api_client_core()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
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
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
