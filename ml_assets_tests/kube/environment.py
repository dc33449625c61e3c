"""The Python environment the development cluster's Ray pods mount: the lock files' stack (the
torch build this checkout's venv has) and this project, installed by uv into a relocatable venv.

It is a folder in the cluster's cache named by the content of the lock files and the project's
sources, so a second start reuses it; uv links files from its own cache, so a new one takes
seconds once the first exists. Pods mount it read-only through a PersistentVolumeClaim (Pod
Security `restricted` allows claims, not host paths).
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEEP = 2  # environments kept besides the current one


def _torch_build() -> str:
    stamp = REPO / ".venv" / ".installed"
    return stamp.read_text().split()[0] if stamp.exists() else "cuda"


def _content_key(build: str) -> str:
    digest = hashlib.sha256(build.encode())
    sources = [REPO / "pyproject.toml", REPO / "requirements.lock",
               REPO / f"requirements-torch-{build}.lock",
               *sorted((REPO / "ml_assets").rglob("*.py"))]  # fmt: skip
    sources += sorted((REPO / "ml_assets").rglob("*.yaml"))  # package data the code reads
    for path in sources:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _uv(*args: str) -> None:
    uv = Path(sys.executable).parent / "uv"
    result = subprocess.run([str(uv), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"uv {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")


def build_environment(cache: Path, progress=print) -> Path:
    """The environment folder for this checkout, built if missing."""
    build = _torch_build()
    target = cache / f"env-{_content_key(build)}"
    if target.is_dir():
        return target
    progress(f"devcluster: installing the pods' Python environment ({build} torch) with uv")
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    _uv("venv", "--quiet", "--relocatable", "--python", f"/usr/bin/python{python}", str(partial))
    index = []
    if build == "cpu":
        choice = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "torch_build.py")],
            capture_output=True, text=True, check=True,
            env={"TORCH_BUILD": "cpu", "PATH": "/usr/bin:/bin"},
        ).stdout.split()  # fmt: skip
        index = ["--extra-index-url", choice[1], "--index-strategy", "unsafe-best-match"]
    interpreter = str(partial / "bin" / "python")
    locks = [str(REPO / "requirements.lock"), str(REPO / f"requirements-torch-{build}.lock")]
    _uv("pip", "sync", "--quiet", "--python", interpreter, *index, *locks)
    with tempfile.TemporaryDirectory() as source:  # a build leaves build/ in its source tree
        for name in ("pyproject.toml", "README.md", "ml_assets"):
            copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
            copy(REPO / name, Path(source) / name)
        _uv("pip", "install", "--quiet", "--python", interpreter, "--no-deps", source)
    partial.rename(target)
    old = sorted(cache.glob("env-*"), key=lambda p: p.stat().st_mtime)[: -KEEP - 1]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return target
