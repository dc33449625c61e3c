"""KubeRay's own RayCluster CRD, as its operator's Go module at the pinned version ships it
(`devcluster/build_binaries.sh` copies it into the cache), installed unmodified: the server
validates every RayCluster the project generates against the schema production uses."""

import time
from pathlib import Path

import yaml


def install_raycluster_crd(api_client, crds: Path, timeout: float = 30.0) -> None:
    """Create the CRD and wait until the server serves `rayclusters.ray.io`."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    crd = yaml.safe_load((crds / "ray.io_rayclusters.yaml").read_text())
    extensions.create_custom_resource_definition(crd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
        conditions = {c.type: c.status for c in (status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.1)  # polling the Established condition
    raise TimeoutError("the RayCluster CRD was not established")
