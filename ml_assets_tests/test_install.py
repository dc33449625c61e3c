"""The install's choice of torch build, run for real: `scripts/sync_venv.sh` with uv against two
stand-in package indexes on 127.0.0.1 (one playing PyPI, one PyTorch's CPU index) that serve
tiny wheels named like torch's builds. The stand-ins are the one thing here that is not the real
service: the tests send traffic to loopback only. Also: the three lock files agree."""

import base64
import functools
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from ml_assets_tests.conftest import VENV_BIN, free_port

REPO = Path(__file__).resolve().parents[1]
TORCH = "2.13.0"


def write_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A minimal valid pure-Python wheel whose module records the version it came from."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}.dist-info/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            + [f"Requires-Dist: {r}" for r in requires]
        )
        + "\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    project = directory / name
    project.mkdir(parents=True, exist_ok=True)
    wheel = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(project / wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    links = "".join(f'<a href="{w.name.replace("+", "%2B")}">{w.name}</a>\n'
                    for w in sorted(project.glob("*.whl")))  # fmt: skip
    (project / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


class StandInIndex:
    """A PEP 503 'simple' index served from a directory on 127.0.0.1, in a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StandInIndex":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def indexes(tmp_path):
    """(PyPI stand-in, CPU-index stand-in): PyPI's torch needs a CUDA wheel; the CPU build not."""
    pypi, cpu = tmp_path / "pypi", tmp_path / "cpu"
    write_wheel(pypi, "torch", TORCH, requires=("nvidia-standin-runtime==13.0",))
    write_wheel(pypi, "nvidia-standin-runtime", "13.0")
    write_wheel(cpu, "torch", f"{TORCH}+cpu")
    with StandInIndex(pypi) as pypi_index, StandInIndex(cpu) as cpu_index:
        yield pypi_index.url, cpu_index.url


@pytest.fixture
def project(tmp_path):
    """The repository's install scripts beside small locks of the same shape, and an empty venv."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "scripts", root / "scripts")
    (root / "requirements.lock").write_text("")
    (root / "requirements-torch-cpu.lock").write_text(f"torch=={TORCH}+cpu\n")
    (root / "requirements-torch-cuda.lock").write_text(
        f"nvidia-standin-runtime==13.0\ntorch=={TORCH}\n"
    )
    uv = str(VENV_BIN / "uv")
    subprocess.run([uv, "venv", "-q", "--python", str(VENV_BIN / "python"), root / ".venv"],
                   check=True, env=uv_env(tmp_path))  # fmt: skip
    (root / ".venv" / "bin" / "uv").symlink_to(uv)
    return root


def uv_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment less every setting that points uv or pip at another index or cache."""
    env = {k: v for k, v in os.environ.items()
           if not re.match(r"(UV|PIP)_|TORCH_BUILD$|ML_ASSETS_TORCH", k)}  # fmt: skip
    return {**env, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1", **settings}


def sync(project: Path, tmp_path: Path, pypi: str, cpu: str, build: str = ""):
    env = uv_env(tmp_path, UV_DEFAULT_INDEX=pypi, ML_ASSETS_TORCH_CPU_INDEX=cpu, TORCH_BUILD=build,
                 PYTHON=str(VENV_BIN / "python"))  # fmt: skip
    return subprocess.run([project / "scripts" / "sync_venv.sh", project / ".venv"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def installed(project: Path) -> dict[str, str]:
    site = next((project / ".venv" / "lib").glob("python3*/site-packages"))
    found = (re.match(r"(.+)-(\d.*)\.dist-info$", p.name) for p in site.glob("*.dist-info"))
    return {m[1]: m[2] for m in found if m}


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def test_the_cpu_build_where_pytorchs_cpu_index_answers(project, indexes, tmp_path):
    pypi, cpu = indexes
    result = sync(project, tmp_path, pypi, cpu)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cpu"
    assert installed(project) == {"torch": f"{TORCH}+cpu"}  # no CUDA wheels came along


def test_pypis_cuda_build_where_the_cpu_index_does_not_answer(project, indexes, tmp_path):
    pypi, _ = indexes
    unreachable = closed_port_url()
    result = sync(project, tmp_path, pypi, unreachable)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cuda"
    assert installed(project) == {"torch": TORCH, "nvidia_standin_runtime": "13.0"}
    assert f"PyTorch's CPU index {unreachable} did not answer" in result.stderr
    assert "TORCH_BUILD=cpu|cuda forces one" in result.stderr


def test_torch_build_forces_the_build_either_way(project, indexes, tmp_path):
    pypi, cpu = indexes
    forced = sync(project, tmp_path, pypi, cpu, build="cuda")
    assert forced.returncode == 0, forced.stderr
    assert installed(project)["torch"] == TORCH
    # Back to the CPU build: the sync removes the CUDA wheel that the CPU build does not need.
    back = sync(project, tmp_path, pypi, cpu, build="cpu")
    assert back.returncode == 0, back.stderr
    assert installed(project) == {"torch": f"{TORCH}+cpu"}


@pytest.mark.parametrize(
    "down, build, expected",
    [
        ("cpu", "cpu", r"error: TORCH_BUILD=cpu, but PyTorch's CPU index \S+ did not answer "
                       r"\(.+\); set TORCH_BUILD=cuda to take PyPI's torch instead"),
        ("pypi", "", r"error: the package index \S+ did not answer \(.+\); "
                     r"set UV_DEFAULT_INDEX to a PyPI mirror this machine reaches"),
        ("none", "gpu", r"error: TORCH_BUILD='gpu' is not one of auto, cpu, cuda"),
    ],
)  # fmt: skip
def test_an_index_that_does_not_answer_fails_in_one_line_before_any_install(
    project, indexes, tmp_path, down, build, expected
):
    pypi, cpu = indexes
    pypi = closed_port_url() if down == "pypi" else pypi
    cpu = closed_port_url() if down == "cpu" else cpu
    result = sync(project, tmp_path, pypi, cpu, build=build)
    assert result.returncode == 2
    assert re.fullmatch(expected, result.stderr.strip()), result.stderr
    assert installed(project) == {}


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([\w.-]+)==(\S+)$", path.read_text(), flags=re.M))


def test_the_locks_pin_one_torch_version_and_split_without_overlap():
    common = pins(REPO / "requirements.lock")
    cuda = pins(REPO / "requirements-torch-cuda.lock")
    cpu = pins(REPO / "requirements-torch-cpu.lock")
    declared = re.search(r'"torch==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert declared and cuda["torch"] == declared[1] and cpu == {"torch": f"{declared[1]}+cpu"}
    assert not set(common) & set(cuda)
    assert {"sympy", "networkx", "filelock", "jinja2"} <= set(common)  # what either build needs
    assert all(re.match(r"torch$|triton$|nvidia-|cuda-", name) for name in cuda)
