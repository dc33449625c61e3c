"""Fixtures of the `kube` tier: a real API server (session), the KubeRay stand-in (per test)."""

import secrets
import time
from pathlib import Path

import pytest
import yaml

from ml_assets_tests.kube.control_plane import ControlPlane, build_binaries
from ml_assets_tests.kube.crds import install_raycluster_crd
from ml_assets_tests.kube.fake_kuberay import (
    AUTH_TOKEN_KEY,
    GROUP,
    PLURAL,
    VERSION,
    FakeKubeRayOperator,
)

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
NAMESPACE = "ml-assets"
RAY_TOKEN = secrets.token_hex(32)  # this session's Ray auth token, in the template's Secret


def pytest_collection_modifyitems(items):
    for item in items:
        if "ml_assets_tests/kube/" in str(item.fspath):
            item.add_marker(pytest.mark.kube)


def manifests(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def apply(api_client, documents: list[dict], dry_run: bool = False) -> None:
    """Create core/RBAC objects and RayClusters; `dry_run` asks the server to validate only."""
    from kubernetes import client, utils

    extra = {"dry_run": "All"} if dry_run else {}
    for document in documents:
        if document["apiVersion"].startswith(GROUP):
            client.CustomObjectsApi(api_client).create_namespaced_custom_object(
                GROUP, VERSION, document["metadata"]["namespace"], PLURAL, document, **extra
            )
        else:
            utils.create_from_dict(api_client, document, **extra)


def create_ray_token_secret(api_client, token: str) -> None:
    """What an operator does once per namespace (k8s/README.md): the cluster's Ray token."""
    from kubernetes import client

    template = manifests(K8S_DIR / "rayclusters" / "raycluster.template.yaml")[0]
    client.CoreV1Api(api_client).create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {"name": template["spec"]["authOptions"]["secretName"]},
            "stringData": {AUTH_TOKEN_KEY: token},
        },
    )


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    built = build_binaries()
    plane = ControlPlane(tmp_path_factory.mktemp("kube"), built / "bin")
    try:
        plane.start(before_controllers=lambda api: install_raycluster_crd(api, built / "crds"))
        admin = plane.api_client()
        apply(admin, manifests(K8S_DIR / "namespace.yaml"))
        apply(admin, manifests(K8S_DIR / "rbac.yaml"))
        create_ray_token_secret(admin, RAY_TOKEN)
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def admin(control_plane):
    return control_plane.api_client()


def list_rayclusters(api_client, namespace: str = NAMESPACE) -> list[str]:
    from kubernetes import client

    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    return sorted(item["metadata"]["name"] for item in items)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)  # polling observable state, not guessing a duration
    raise TimeoutError(f"{what} not within {timeout}s")


@pytest.fixture
def operator(control_plane, ml_home):
    """The KubeRay stand-in; a test sets `.mode`. Fails the test if it hit an error.
    (`ml_home`: X-Ray records and local MLflow of the test stay in its tmp dir.)"""
    fake = FakeKubeRayOperator(control_plane.api_client()).start()
    try:
        yield fake
    finally:
        fake.stop()
        admin = control_plane.api_client()
        for name in list_rayclusters(admin):  # leave nothing for the next test to trip over
            from kubernetes import client

            client.CustomObjectsApi(admin).delete_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name
            )
    assert not fake.errors, fake.errors


@pytest.fixture
def kuberay_env(control_plane, monkeypatch):
    """What an operator sets to switch the code location to `kuberay` mode, plus the host seam."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setenv("ML_ASSETS_RAY", "kuberay")
    monkeypatch.setenv("ML_ASSETS_RAY_CONNECT_HOST", "127.0.0.1")
    monkeypatch.setenv("RAY_AUTH_TOKEN", RAY_TOKEN)  # the run pods' env from the same Secret
    return control_plane
