"""Cluster profiles: the small, validated schema a RayCluster is rendered from.

A profile is a YAML file: the package's own in `manifests/profiles/` (linked from `k8s/profiles/`),
or a folder of yours (`profiles_dir`). The same profiles serve the Ray resource's `kuberay`
mode and the CLI. `preflight()` refuses in milliseconds what a cluster could never schedule, before
anything is created: an unknown GPU type, a request above the profile's quota, an image without a
tag, or an image whose Ray or Python version differs from this code location's (a Ray driver and
its cluster must run the same Ray and Python, or the connection fails late and obscurely).
"""

import re
import sys
from importlib.metadata import version
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# GPU type -> the `nvidia.com/gpu.product` node label NVIDIA's GPU feature discovery sets.
GPU_PRODUCTS = {
    "nvidia-t4": "Tesla-T4",
    "nvidia-l4": "NVIDIA-L4",
    "nvidia-a10g": "NVIDIA-A10G",
    "nvidia-a100-80gb": "NVIDIA-A100-SXM4-80GB",
    "nvidia-h100": "NVIDIA-H100-80GB-HBM3",
    "nvidia-h200": "NVIDIA-H200",
}
DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent / "manifests" / "profiles"  # package data


class ProfileError(ValueError):
    """A profile or request that cannot run; the message names the problem and the fix."""


class Quota(BaseModel):
    """The most one cluster of this profile may ask for (a per-team budget, not the cloud's)."""

    model_config = ConfigDict(extra="forbid")
    max_workers: int = Field(ge=0, description="Most worker pods.")
    max_cpu: float = Field(gt=0, description="Most CPU cores over head and workers.")
    max_memory_gib: float = Field(gt=0, description="Most memory (GiB) over head and workers.")
    max_gpus: int = Field(default=0, ge=0, description="Most GPUs over all workers.")


class ClusterProfile(BaseModel):
    """What a data scientist chooses: GPU type and count, workers, CPU, memory, image, spot."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=30)
    namespace: str = Field(default="ml-assets", description="Namespace the clusters live in.")
    image: str = Field(description="Image of head and workers: Ray and Python as the driver's.")
    workers: int = Field(ge=0, description="Worker pods (fixed: no autoscaling per step).")
    worker_cpu: float = Field(gt=0, description="CPU cores per worker.")
    worker_memory_gib: float = Field(gt=0, description="Memory per worker in GiB.")
    gpu_type: str | None = Field(default=None, description=f"One of {sorted(GPU_PRODUCTS)}.")
    gpus_per_worker: int = Field(default=0, ge=0, description="GPUs per worker.")
    head_cpu: float = Field(default=1, gt=0, description="CPU cores of the head pod.")
    head_memory_gib: float = Field(default=4, gt=0, description="Memory of the head pod in GiB.")
    spot: bool = Field(default=False, description="Place workers on spot/preemptible nodes.")
    environment_claim: str | None = Field(
        default=None,
        description="A PersistentVolumeClaim holding the Python environment (a venv of the lock "
        "files' stack and this project), mounted read-only first on PATH; for images that carry "
        "only Python, as on a cluster without an image registry. Images from k8s/Dockerfile "
        "carry the environment and need none.",
    )
    quota: Quota

    @property
    def total_cpu(self) -> float:
        return self.head_cpu + self.workers * self.worker_cpu

    @property
    def total_memory_gib(self) -> float:
        return self.head_memory_gib + self.workers * self.worker_memory_gib

    @property
    def total_gpus(self) -> int:
        return self.workers * self.gpus_per_worker


PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a file in the profiles folder, no path


def _fail(problem: str, fix: str) -> ProfileError:
    return ProfileError(f"{problem}\n  fix: {fix}")


def load_profile(name: str, profiles_dir: Path | None = None) -> ClusterProfile:
    """The profile `name` from `<profiles_dir>/<name>.yaml`, schema-checked."""
    directory = profiles_dir or DEFAULT_PROFILES_DIR
    if not PROFILE_NAME.fullmatch(name):
        raise _fail(
            f"{name!r} is not a profile name",
            "use lower-case letters, digits and dashes, as in `ml-assets cluster plan --help`",
        )
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise _fail(f"no cluster profile {name!r} in {directory}", f"use one of {known}")
    try:
        profile = ClusterProfile.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _fail(f"profile {path} is not valid YAML{where}", "fix the file's syntax") from None
    except ValidationError as error:
        raise _fail(
            f"profile {path} is invalid:\n{error}", "correct the fields named above"
        ) from None
    if profile.name != name:
        raise _fail(f"{path} declares name {profile.name!r}", f"set `name: {name}` in the file")
    return profile


def with_overrides(profile: ClusterProfile, **overrides: object) -> ClusterProfile:
    """The profile with the given fields replaced (None leaves a field alone), re-validated."""
    changes = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ClusterProfile.model_validate(profile.model_dump() | changes)
    except ValidationError as error:
        problem = f"overrides {changes} are invalid:\n{error}"
        raise _fail(problem, "correct the values named above") from None


def _image_versions(image: str) -> tuple[str | None, str | None]:
    """(Ray version, Python `X.Y`) read off an image tag.

    Two conventions: this project's `ml-assets:<version>-ray2.60.0-py311`, and Ray's own
    `rayproject/ray:2.60.0-py311`.
    """
    repository, tag = image.rsplit(":", 1)
    ray = re.search(r"ray(\d+\.\d+\.\d+)", tag)
    if ray is None and repository.rsplit("/", 1)[-1] == "ray":
        ray = re.match(r"(\d+\.\d+\.\d+)", tag)
    python = re.search(r"py(\d)(\d+)", tag)
    return (
        ray.group(1) if ray else None,
        f"{python.group(1)}.{python.group(2)}" if python else None,
    )


def preflight(profile: ClusterProfile, *, ray_version: str | None = None) -> None:
    """Refuse what cannot be scheduled or connected to; silent when the profile can run."""
    if profile.gpu_type is not None and profile.gpu_type not in GPU_PRODUCTS:
        raise _fail(
            f"profile {profile.name!r}: unknown GPU type {profile.gpu_type!r}",
            f"use one of {sorted(GPU_PRODUCTS)}",
        )
    if profile.gpus_per_worker and profile.gpu_type is None:
        raise _fail(
            f"profile {profile.name!r} asks for {profile.gpus_per_worker} GPUs per worker "
            "without a GPU type",
            f"set gpu_type to one of {sorted(GPU_PRODUCTS)}",
        )
    if profile.gpu_type is not None and profile.gpus_per_worker == 0:
        raise _fail(
            f"profile {profile.name!r} names GPU type {profile.gpu_type} but 0 GPUs per worker",
            "set gpus_per_worker >= 1, or remove gpu_type",
        )
    quota = profile.quota
    for what, asked, most in (
        ("workers", profile.workers, quota.max_workers),
        ("CPU cores", profile.total_cpu, quota.max_cpu),
        ("GiB of memory", profile.total_memory_gib, quota.max_memory_gib),
        ("GPUs", profile.total_gpus, quota.max_gpus),
    ):
        if asked > most:
            raise _fail(
                f"profile {profile.name!r} asks for {asked:g} {what}, above its quota of {most:g}",
                f"ask for at most {most:g} {what}, or raise the quota in the profile's file",
            )
    last = profile.image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest") or "@" in last:
        raise _fail(
            f"profile {profile.name!r}: image {profile.image!r} has no pinned version tag",
            "use an image tagged with its Ray and Python versions, e.g. "
            f"`ml-assets:0.1.0-ray{version('ray')}-py{sys.version_info.major}{sys.version_info.minor}`",
        )
    image_ray, image_python = _image_versions(profile.image)
    local_ray = ray_version or version("ray")
    local_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if image_ray != local_ray or image_python != local_python:
        raise _fail(
            f"profile {profile.name!r}: image {profile.image!r} carries Ray {image_ray} / "
            f"Python {image_python}, but this code location runs Ray {local_ray} / "
            f"Python {local_python}",
            "build the image from k8s/Dockerfile for this code version, or run the code "
            "location with the image's versions",
        )
