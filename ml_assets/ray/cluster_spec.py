"""Render a cluster profile into a RayCluster (ray.io/v1) from the package's template
(`manifests/raycluster.template.yaml`, linked from `k8s/rayclusters/`).

The template carries what every cluster shares (security context, ports, shared memory, the
ServiceAccount without API rights); the profile decides sizes, images, GPUs and spot placement.
Names and labels tie a cluster to the Dagster run, asset, partition and code version, so that the
cleanup sensor and `ml-assets cluster ls` can find the owner of any cluster.
"""

import copy
import hashlib
import re
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import yaml

from ml_assets.ray.profiles import GPU_PRODUCTS, ClusterProfile, preflight
from ml_assets.version import code_version

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "manifests" / "raycluster.template.yaml"
MANAGED_BY = "ml-assets"
LABEL_PREFIX = "ml-assets.io"
# Where a profile's `environment_claim` is mounted; images without an environment put its bin/
# first on PATH (and link `ray` from /usr/local/bin, for KubeRay's login-shell init container).
ENVIRONMENT_MOUNT = "/opt/ml-assets/env"
# Spot capacity: Karpenter's label and the taint most spot node pools carry.
SPOT_SELECTOR = {"karpenter.sh/capacity-type": "spot"}
SPOT_TOLERATION = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class OwnerPod:
    """The step's pod, from the downward API: the cluster's ownerReference, so that Kubernetes'
    garbage collector deletes the cluster with the pod, even when the step was SIGKILLed and
    could not delete it itself. A run pod is deleted with its Job (the launcher's
    `ttlSecondsAfterFinished`): that bounds how long a cluster outlives its run."""

    name: str
    uid: str
    namespace: str

    def reference(self) -> dict:
        # Not a controller, and no blockOwnerDeletion: that would need delete rights on pods.
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}


@dataclass(frozen=True)
class ClusterOwner:
    """Who a cluster belongs to: the Dagster run and step that created it."""

    run_id: str
    asset: str
    partition: str | None = None
    code_version: str = field(default_factory=code_version)
    owner_uid: str = ""  # one resource instance: a retried step gets a new cluster
    pod: OwnerPod | None = None  # the pod the step runs in, when it runs in one


def label_value(value: str) -> str:
    """A Kubernetes label value: <= 63 chars of [-A-Za-z0-9_.], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value).strip("-_.")
    if len(cleaned) > 63:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:54].rstrip('-_.')}-{digest}"
    return cleaned


def cluster_name(owner: ClusterOwner) -> str:
    """`mla-<asset>-<run8>-<uid>`: DNS-1123, <= 45 chars so KubeRay's `-head-svc` etc. still fit."""
    asset = re.sub(r"[^a-z0-9]+", "-", owner.asset.lower()).strip("-")[:18].strip("-")
    return "-".join(part for part in ("mla", asset, owner.run_id[:8], owner.owner_uid[:6]) if part)


def owner_labels(owner: ClusterOwner, profile: str) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{LABEL_PREFIX}/run-id": owner.run_id,
        f"{LABEL_PREFIX}/asset": owner.asset,
        f"{LABEL_PREFIX}/code-version": owner.code_version,
        f"{LABEL_PREFIX}/profile": profile,
        f"{LABEL_PREFIX}/owner-uid": owner.owner_uid,
    }
    if owner.partition:
        labels[f"{LABEL_PREFIX}/partition"] = owner.partition
    return {key: label_value(value) for key, value in labels.items() if value}


def _quantity_cpu(cores: float) -> str:
    return str(int(cores)) if float(cores).is_integer() else f"{round(cores * 1000)}m"


def _quantity_memory(gib: float) -> str:
    return f"{int(gib)}Gi" if float(gib).is_integer() else f"{round(gib * 1024)}Mi"


def _size(container: dict, cpu: float, memory_gib: float, gpus: int = 0) -> None:
    amount = {"cpu": _quantity_cpu(cpu), "memory": _quantity_memory(memory_gib)}
    if gpus:
        amount["nvidia.com/gpu"] = str(gpus)
    container["resources"] = {"requests": dict(amount), "limits": dict(amount)}


def render_raycluster(
    profile: ClusterProfile,
    owner: ClusterOwner,
    *,
    template: Path = DEFAULT_TEMPLATE,
    ray_version: str | None = None,
) -> dict:
    """The RayCluster manifest for one materialization; runs the pre-flight check first."""
    preflight(profile, ray_version=ray_version)
    spec = yaml.safe_load(template.read_text())
    labels = owner_labels(owner, profile.name)
    spec["metadata"] = {
        "name": cluster_name(owner),
        "namespace": profile.namespace,
        "labels": labels,
        # Unabridged values: labels are truncated to 63 characters, annotations are not.
        "annotations": {
            f"{LABEL_PREFIX}/run-id": owner.run_id,
            f"{LABEL_PREFIX}/asset": owner.asset,
            f"{LABEL_PREFIX}/partition": owner.partition or "",
        },
    }
    if owner.pod is not None:
        if owner.pod.namespace != profile.namespace:
            # The garbage collector would not find it, and delete the cluster at once.
            raise ValueError(
                f"pod {owner.pod.namespace}/{owner.pod.name} cannot own a RayCluster in "
                f"namespace {profile.namespace!r}: an owner must be in its dependent's namespace"
            )
        spec["metadata"]["ownerReferences"] = [owner.pod.reference()]
    spec["spec"]["rayVersion"] = ray_version or version("ray")

    head = spec["spec"]["headGroupSpec"]
    head_pod = head["template"]
    head_pod.setdefault("metadata", {})["labels"] = dict(labels)
    head_container = head_pod["spec"]["containers"][0]
    head_container["image"] = profile.image
    _size(head_container, profile.head_cpu, profile.head_memory_gib)
    # With no workers the head does the work; otherwise it only coordinates.
    head["rayStartParams"]["num-cpus"] = "0" if profile.workers else _quantity_cpu(profile.head_cpu)

    template_group = spec["spec"]["workerGroupSpecs"][0]
    spec["spec"]["workerGroupSpecs"] = []
    if profile.workers:
        group = copy.deepcopy(template_group)
        group["groupName"] = "gpu-workers" if profile.gpu_type else "workers"
        group["replicas"] = group["minReplicas"] = group["maxReplicas"] = profile.workers
        pod = group["template"]
        pod.setdefault("metadata", {})["labels"] = dict(labels)
        worker = pod["spec"]["containers"][0]
        worker["image"] = profile.image
        _size(worker, profile.worker_cpu, profile.worker_memory_gib, profile.gpus_per_worker)
        selector: dict[str, str] = {}
        tolerations: list[dict] = []
        if profile.gpu_type:
            selector["nvidia.com/gpu.product"] = GPU_PRODUCTS[profile.gpu_type]
            tolerations.append(GPU_TOLERATION)
        if profile.spot:
            selector |= SPOT_SELECTOR
            tolerations.append(SPOT_TOLERATION)
        if selector:
            pod["spec"]["nodeSelector"] = selector
        if tolerations:
            pod["spec"]["tolerations"] = tolerations
        spec["spec"]["workerGroupSpecs"].append(group)
    if profile.environment_claim:
        for pod in [head_pod] + [g["template"] for g in spec["spec"]["workerGroupSpecs"]]:
            _mount_environment(pod["spec"], profile.environment_claim)
    return spec


def _mount_environment(pod_spec: dict, claim: str) -> None:
    pod_spec.setdefault("volumes", []).append(
        {"name": "environment", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    )
    container = pod_spec["containers"][0]
    container.setdefault("volumeMounts", []).append(
        {"name": "environment", "mountPath": ENVIRONMENT_MOUNT, "readOnly": True}
    )
