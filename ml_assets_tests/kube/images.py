"""Images for a cluster without a registry: docker-archive tarballs that `ctr images import` loads.

Each image is one layer. The sandbox (pause), CoreDNS and KubeRay operator images hold one static
binary each. The Ray image is a Debian bookworm root file system (debootstrap) with Python 3.11,
bash and wget (KubeRay's probes call it) and user 1000; the Python environment (Ray, torch, this
project, pinned by the lock files) is not in it but on a volume the pods mount at `ENV_MOUNT`:
torch's PyPI build alone is 4.6 GB, which would cost minutes per cluster start to write and
import, while the environment volume is built once per lock and project content and then reused.

Archives are cached under the cluster's cache folder, named by their content, so a second start
only imports them.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from ml_assets.ray.cluster_spec import ENVIRONMENT_MOUNT as ENV_MOUNT

REGISTRY = "ml-assets.local"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
RAY_BASE_PACKAGES = ["python3", "ca-certificates", "wget", "procps"]
RAY_USER = (1000, 100)  # the template's runAsUser / runAsGroup


@dataclass(frozen=True)
class Image:
    name: str  # e.g. ml-assets.local/pause:3f2a...
    archive: Path


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_docker_archive(layer: Path, tag: str, config: dict, archive: Path) -> None:
    """`layer` (an uncompressed tar) as the single layer of image `tag`, written to `archive`."""
    diff_id = f"sha256:{_sha256_file(layer)}"
    image_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = f"{hashlib.sha256(image_config).hexdigest()}.json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]
    ).encode()
    partial = archive.with_name(f".{archive.name}.partial")
    with tarfile.open(partial, "w") as out:
        out.add(layer, arcname="layer/layer.tar")
        for name, data in ((config_name, image_config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    partial.rename(archive)


def _content_key(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def binary_image(cache: Path, name: str, binary: Path, path_in_image: str, args=()) -> Image:
    """An image of one static binary, run as an unprivileged user."""
    real = binary.resolve()
    key = _content_key(real.read_bytes(), path_in_image, *args)
    tag = f"{REGISTRY}/{name}:{key}"
    archive = cache / f"{name}-{key}.tar"
    if not archive.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            layer = Path(work) / "layer.tar"
            with tarfile.open(layer, "w") as out:
                info = out.gettarinfo(str(real), arcname=path_in_image.lstrip("/"))
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "", ""
                with real.open("rb") as file:
                    out.addfile(info, file)
            config = {"Entrypoint": [path_in_image, *args], "User": "65532:65532"}
            write_docker_archive(layer, tag, config, archive)
    return Image(tag, archive)


def ray_base_image(cache: Path, progress=print) -> Image:
    """Debian bookworm with Python 3.11 for Ray pods; the environment comes from `ENV_MOUNT`.
    Tagged as the `dev` profile names it: with the Ray and Python versions of the environment
    (the lock's, as this process's), which the profile's pre-flight check compares."""
    python = "".join(map(str, sys.version_info[:2]))
    tag = f"{REGISTRY}/ml-assets:dev-ray{version('ray')}-py{python}"
    uid, gid = RAY_USER
    path = f"{ENV_MOUNT}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    # Ray's usage statistics would be sent to a server outside the cluster.
    config = {"Env": [f"PATH={path}", "RAY_USAGE_STATS_ENABLED=0"], "User": f"{uid}:{gid}",
              "WorkingDir": "/home/ray"}  # fmt: skip
    layer = ray_rootfs_layer(cache, progress)
    key = _content_key(layer.name, json.dumps(config), tag)
    archive = cache / f"ray-base-{key}.tar"
    if not archive.exists():
        write_docker_archive(layer, tag, config, archive)
        _prune(cache, "ray-base-", keep=archive)
    return Image(tag, archive)


def _prune(cache: Path, prefix: str, keep: Path) -> None:
    for old in cache.glob(f"{prefix}*.tar"):
        if old != keep:
            old.unlink()


def ray_rootfs_layer(cache: Path, progress=print) -> Path:
    """The Ray image's one layer: a debootstrap root file system with user `RAY_USER`."""
    uid, gid = RAY_USER
    key = _content_key("bookworm", DEBIAN_MIRROR, *RAY_BASE_PACKAGES, ENV_MOUNT, str(RAY_USER))
    layer = cache / f"ray-rootfs-{key}.tar"
    if layer.exists():
        return layer
    cache.mkdir(parents=True, exist_ok=True)
    progress("devcluster: building the Ray image's root file system with debootstrap (once)")
    with tempfile.TemporaryDirectory(dir=cache) as work:
        rootfs = Path(work) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(RAY_BASE_PACKAGES)}",
             "bookworm", str(rootfs), DEBIAN_MIRROR],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            detail = log.read_text()[-2000:] if log.exists() else result.stderr[-2000:]
            raise RuntimeError(f"debootstrap failed:\n{detail}")
        with (rootfs / "etc" / "passwd").open("a") as passwd:
            passwd.write(f"ray:x:{uid}:{gid}:ray:/home/ray:/bin/bash\n")
        home = rootfs / "home" / "ray"
        home.mkdir(parents=True)
        os.chown(home, uid, gid)
        (rootfs / ENV_MOUNT.lstrip("/")).mkdir(parents=True)
        # KubeRay's injected init container runs `bash -l`, whose profile resets PATH.
        for command in ("ray", "python", "python3"):
            link = rootfs / "usr" / "local" / "bin" / command
            link.unlink(missing_ok=True)
            link.symlink_to(f"{ENV_MOUNT}/bin/{command}")
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        partial = Path(work) / "layer.tar"
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "--exclude=./dev/*", "-cf",
             str(partial), "."],
            check=True,
        )  # fmt: skip
        _prune(cache, "ray-rootfs-", keep=layer)
        partial.rename(layer)
    return layer
