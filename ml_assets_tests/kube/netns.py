"""The development cluster's network: one network namespace that every daemon and pod lives in.

Addresses come from one block per cluster (`10.213.B.0/30` for the link, `10.214.B.0/24` for
pods, `10.215.B.0/24` for Services, B chosen so that no route on the machine overlaps), so the
cluster only ever talks to addresses inside its namespace and to its own loopback. The machine
reaches the node through a veth pair and routes to the pod and Service ranges through it; it does
not forward (its `ip_forward` is left as it is), so nothing in the namespace reaches beyond it.

Daemons start with `nsenter --net=` rather than `ip netns exec`, which remounts /sys and leaves
the kubelet without the cgroup mounts it looks for.
"""

import ipaddress
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
NAME_PREFIX = "mla-"


def _ip(*args: str, netns: str | None = None) -> str:
    prefix = ["nsenter", f"--net={NETNS_DIR / netns}"] if netns else []
    result = subprocess.run([*prefix, "ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _used_networks() -> list[ipaddress.IPv4Network]:
    networks = []
    for line in _ip("-4", "route", "show", "table", "all").splitlines():
        destination = line.split()[0] if line.split() else ""
        if destination in ("default", "broadcast", "local", "unreachable"):
            continue
        try:
            networks.append(ipaddress.ip_network(destination, strict=False))
        except ValueError:
            continue
    return networks


@dataclass
class NodeNetwork:
    """The namespace, its veth link to the machine and the routes to the pod and Service ranges."""

    name: str
    block: int

    @property
    def host_address(self) -> str:
        return f"10.213.{self.block}.1"

    @property
    def node_address(self) -> str:
        return f"10.213.{self.block}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.214.{self.block}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.214.{self.block}.1"

    @property
    def service_cidr(self) -> str:
        return f"10.215.{self.block}.0/24"

    @property
    def api_service_ip(self) -> str:
        return f"10.215.{self.block}.1"  # the first Service address is `kubernetes`'s

    @property
    def dns_service_ip(self) -> str:
        return f"10.215.{self.block}.10"

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    @property
    def host_link(self) -> str:
        return f"{self.name}-h"

    def command(self, *args: str) -> list[str]:
        """`args` run inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *args]

    @classmethod
    def create(cls) -> "NodeNetwork":
        used = _used_networks()
        taken = {network.name for network in NETNS_DIR.glob(f"{NAME_PREFIX}*")}
        for _ in range(64):
            block = secrets.randbelow(250) + 1
            candidate = cls(f"{NAME_PREFIX}{secrets.token_hex(3)}", block)
            ranges = [
                ipaddress.ip_network(r)
                for r in (f"10.213.{block}.0/30", candidate.pod_cidr, candidate.service_cidr)
            ]
            if candidate.name not in taken and not any(r.overlaps(u) for r in ranges for u in used):
                candidate._bring_up()
                return candidate
        raise RuntimeError("no free address block in 10.213-215.x.0: remove stale mla-* routes")

    def _bring_up(self) -> None:
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", "eth0",
                "netns", self.name)  # fmt: skip
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            _ip("addr", "add", f"{self.node_address}/30", "dev", "eth0", netns=self.name)
            _ip("link", "set", "eth0", "up", netns=self.name)
            _ip("link", "set", "lo", "up", netns=self.name)
            # The pods' bridge, made here so the Service range can be routed through it before
            # the first pod: processes in the node reach ClusterIPs (kube-proxy's DNAT) that way.
            _ip("link", "add", "cni0", "type", "bridge", netns=self.name)
            _ip("addr", "add", f"{self.pod_gateway}/24", "dev", "cni0", netns=self.name)
            _ip("link", "set", "cni0", "up", netns=self.name)
            _ip("route", "add", self.service_cidr, "dev", "cni0", netns=self.name)
            subprocess.run(
                self.command(
                    "sh", "-c",
                    "echo 1 > /proc/sys/net/ipv4/ip_forward && "
                    "{ [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || "
                    "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables; }",
                ),
                check=True,
            )  # fmt: skip
            for cidr in (self.pod_cidr, self.service_cidr):
                _ip("route", "add", cidr, "via", self.node_address, "dev", self.host_link)
        except BaseException:
            self.remove()
            raise

    def pids(self) -> list[int]:
        """Processes still inside the namespace (none once the cluster has stopped)."""
        result = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def remove(self) -> None:
        """Deletes the namespace; its veth end, the machine's end and the routes go with it."""
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    @staticmethod
    def exists(name: str) -> bool:
        return (NETNS_DIR / name).exists()
