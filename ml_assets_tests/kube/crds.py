"""The real KubeRay RayCluster CRD, made acceptable to the v1.20 API server (../shared/kuberay/).

Three constructs newer servers accept are stripped (the shared README lists them): CEL rules,
`default: ""` on strings, and map-type list markers. Everything else, the whole structural schema
included, stays, so the server validates every RayCluster the project generates for real.
"""

import os
import time
from pathlib import Path

import yaml

SHARED_KUBERAY = Path(
    os.environ.get(
        "ML_ASSETS_KUBERAY_CRDS", Path(__file__).resolve().parents[3] / "shared" / "kuberay"
    )
)
RAYCLUSTER_CRD = SHARED_KUBERAY / "ray.io_rayclusters.yaml"


def _strip(node: object) -> object:
    if isinstance(node, dict):
        stripped = {}
        for key, value in node.items():
            if key == "x-kubernetes-validations":
                continue
            if key == "default" and value == "":
                continue
            if key == "x-kubernetes-list-type" and value == "map":
                continue
            if key == "x-kubernetes-list-map-keys":
                continue
            stripped[key] = _strip(value)
        return stripped
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def load_raycluster_crd() -> dict:
    crd = yaml.safe_load(RAYCLUSTER_CRD.read_text())
    crd = _strip(crd)
    assert isinstance(crd, dict)
    crd.get("metadata", {}).pop("annotations", None)
    return crd


def install_raycluster_crd(api_client, timeout: float = 30.0) -> None:
    """Create the CRD and wait until the server serves `rayclusters.ray.io`."""
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api_client)
    crd = load_raycluster_crd()
    extensions.create_custom_resource_definition(crd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
        conditions = {c.type: c.status for c in (status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.1)  # polling the Established condition
    raise TimeoutError("the RayCluster CRD was not established")
