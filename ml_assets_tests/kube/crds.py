"""KubeRay's own CRDs, as its operator's Go module at the pinned version ships them
(`devcluster/build_binaries.sh` copies them into the cache), installed unmodified: the server
validates every RayCluster the project generates against the schema production uses."""

import time
from pathlib import Path

import yaml


def install_kuberay_crds(api_client, crds: Path, timeout: float = 30.0) -> None:
    """Create every CRD in `crds` and wait until the server serves each of them."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(crds.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        extensions.create_custom_resource_definition(crd)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        status = extensions.read_custom_resource_definition(names[0]).status
        conditions = {c.type: c.status for c in (status.conditions or [])}
        if conditions.get("Established") == "True":
            names.pop(0)
        else:
            time.sleep(0.1)  # polling the Established condition
    if names:
        raise TimeoutError(f"CRDs not established within {timeout:g}s: {', '.join(names)}")
