"""The development cluster's node: containerd (with runc and the CNI bridge), kubelet, kube-proxy.

Settings this kind of machine needs (cgroup v1, no CAP_SYS_RESOURCE for root), each found by
failing without it:
- containerd's CRI `restrict_oom_score_adj`: runc may not lower a process's OOM score here, and
  without it every pod sandbox fails with "failed to update /proc/self/oom_score_adj";
- kubelet `cgroupDriver: cgroupfs` and `failCgroupV1: false` (there is no systemd managing
  cgroups, and v1 is deprecated, not gone), `failSwapOn: false`;
- kube-proxy leaves the machine's conntrack sysctls alone (`maxPerCore: 0`, timeouts 0).
The kubelet's pod cgroups sit under `cgroupRoot` (`/ml-assets-<netns>`), removed at the end.
"""

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from ml_assets_tests.kube.netns import NodeNetwork

CGROUP_MOUNTS = Path("/sys/fs/cgroup")


def containerd_config(root: Path, bin_dir: Path, cni_dir: Path, sandbox_image: str) -> str:
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{root / "containerd.sock"}"
[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{bin_dir / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_dir}"
    conf_dir = "{root / "net.d"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
"""


def cni_config(network: NodeNetwork) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": "ml-assets-dev",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,  # a pod reaches itself through its own Service
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.pod_cidr, "gateway": network.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(root: Path, network: NodeNetwork, ca: Path, runtime_socket: Path) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.node_address,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/ml-assets-{network.name}",  # NodeFiles.cgroup_name
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "clusterDNS": [network.dns_service_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": str(root / "resolv.conf"),
        "podCIDR": network.pod_cidr,
        "serializeImagePulls": False,
        # A shared development machine: evict only when it is truly out of room.
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
            "nodefs.inodesFree": "2%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "staticPodPath": "",
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def kube_proxy_config(kubeconfig: Path, network: NodeNetwork, node_name: str) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": network.pod_cidr,
        "hostnameOverride": node_name,
        "bindAddress": network.node_address,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


@dataclass
class NodeFiles:
    """Where the node's daemons keep their state, and the configuration they start from."""

    root: Path
    network: NodeNetwork

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def runtime_socket(self) -> Path:
        return self.containerd_root / "containerd.sock"

    def write(
        self, bin_dir: Path, cni_dir: Path, sandbox_image: str, ca: Path,
        kubelet_kubeconfig: Path, proxy_kubeconfig: Path, node_name: str,
    ) -> None:  # fmt: skip
        (self.containerd_root / "net.d").mkdir(parents=True, exist_ok=True)
        (self.containerd_root / "config.toml").write_text(
            containerd_config(self.containerd_root, bin_dir, cni_dir, sandbox_image)
        )
        (self.containerd_root / "net.d" / "10-ml-assets.conflist").write_text(
            json.dumps(cni_config(self.network), indent=2)
        )
        # Pods resolve cluster names only: the cluster never asks a resolver outside it.
        (self.root / "resolv.conf").write_text("options ndots:5\n")
        (self.root / "kubelet.yaml").write_text(
            yaml.safe_dump(kubelet_config(self.root, self.network, ca, self.runtime_socket))
        )
        (self.root / "kube-proxy.yaml").write_text(
            yaml.safe_dump(kube_proxy_config(proxy_kubeconfig, self.network, node_name))
        )
        self.kubelet_kubeconfig = kubelet_kubeconfig

    def containerd_args(self) -> list[str]:
        return ["--config", str(self.containerd_root / "config.toml")]

    def kubelet_args(self, node_name: str) -> list[str]:
        return [
            "--config", str(self.root / "kubelet.yaml"),
            "--kubeconfig", str(self.kubelet_kubeconfig),
            "--root-dir", str(self.root / "kubelet"),
            "--hostname-override", node_name,
            "--node-ip", self.network.node_address,
        ]  # fmt: skip

    def kube_proxy_args(self) -> list[str]:
        return ["--config", str(self.root / "kube-proxy.yaml")]

    def ctr(self, bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bin_dir / "ctr"), "--address", str(self.runtime_socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
        )

    @property
    def cgroup_name(self) -> str:
        return f"ml-assets-{self.network.name}"

    def create_cgroups(self) -> None:
        """The kubelet's `cgroupRoot` must exist in every hierarchy before it starts."""
        for hierarchy in CGROUP_MOUNTS.iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue  # not a v1 hierarchy (the unified mount of a hybrid layout)
            top = hierarchy / self.cgroup_name
            top.mkdir(exist_ok=True)
            for setting in ("cpuset.cpus", "cpuset.mems"):  # empty in a new cpuset cgroup
                if (top / setting).exists():
                    (top / setting).write_text((hierarchy / setting).read_text())

    def kill_cgroup_processes(self, timeout: float = 10) -> list[int]:
        """SIGKILLs every process left in the kubelet's cgroups; returns their PIDs."""
        import time

        tree = CGROUP_MOUNTS / "pids" / self.cgroup_name

        def pids() -> set[int]:
            found = set()
            for procs in tree.rglob("cgroup.procs") if tree.is_dir() else []:
                found |= {int(pid) for pid in procs.read_text().split()}
            return found

        killed = sorted(pids())
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids() and time.monotonic() < deadline:
            time.sleep(0.1)  # a killed process leaves its cgroup when the kernel has reaped it
        return killed

    def remove_cgroups(self) -> list[str]:
        """Removes the kubelet's cgroup tree in every hierarchy; returns what could not go."""
        left = []
        for hierarchy in CGROUP_MOUNTS.iterdir():
            top = hierarchy / self.cgroup_name
            if not top.is_dir():
                continue
            for directory in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
                if directory.is_dir():
                    try:
                        directory.rmdir()
                    except OSError:
                        left.append(str(directory))
            try:
                top.rmdir()
            except OSError:
                left.append(str(top))
        return left

    def remove_state(self) -> None:
        """Unmounts what the kubelet and containerd left mounted under the root, then deletes."""
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.root))
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
