"""Fixtures of the `kube` tier: a real one-node cluster with the real KubeRay operator."""

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from ml_assets_tests.conftest import free_port
from ml_assets_tests.kube.cluster import DevCluster
from ml_assets_tests.services import PostgresServer

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
NAMESPACE = "ml-assets"
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayclusters"
AUTH_TOKEN_KEY = "auth_token"  # key of the token in the Secret named by authOptions.secretName
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


@contextmanager
def prepared_cluster(directory: Path, token: str = RAY_TOKEN) -> Iterator[DevCluster]:
    """The cluster, with `k8s/`'s namespace and RBAC applied, the Ray token Secret and the pods'
    environment claim; the operator is off. Stopping it must leave nothing."""
    cluster = DevCluster(directory, progress=lambda line: None)
    try:
        cluster.start()
        admin = cluster.control_plane.api_client()
        apply(admin, manifests(K8S_DIR / "namespace.yaml"))
        apply(admin, manifests(K8S_DIR / "rbac.yaml"))
        create_ray_token_secret(admin, token)
        cluster.provide_environment(NAMESPACE)
        cluster.scale_operator(0)
        yield cluster
    finally:
        left = cluster.stop()
    assert not left, f"stopping the development cluster left or had to force: {left}"


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory):
    """`prepared_cluster` for the session; `real_operator` turns the operator on."""
    with prepared_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def control_plane(dev_cluster):
    return dev_cluster.control_plane


@pytest.fixture
def real_operator(dev_cluster, ml_home):
    """The KubeRay operator running as its pod; every RayCluster is deleted afterwards."""
    dev_cluster.scale_operator(1)
    try:
        yield dev_cluster
    finally:
        admin = dev_cluster.control_plane.api_client()
        delete_rayclusters(admin)
        wait_for(lambda: not ray_pods(admin), 60, "the Ray pods to be deleted")
        dev_cluster.scale_operator(0)


def delete_rayclusters(admin) -> None:
    from kubernetes import client

    for name in list_rayclusters(admin):
        client.CustomObjectsApi(admin).delete_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name
        )


def ray_pods(admin) -> list[str]:
    from kubernetes import client

    pods = client.CoreV1Api(admin).list_namespaced_pod(NAMESPACE, label_selector="ray.io/cluster")
    return [pod.metadata.name for pod in pods.items]


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
def kuberay_env(control_plane, monkeypatch):
    """What an operator sets to switch the code location to `kuberay` mode on this cluster."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setenv("ML_ASSETS_RAY", "kuberay")
    monkeypatch.setenv("ML_ASSETS_RAY_PROFILE", "dev")
    # This host is routed into the cluster network, without the cluster's DNS.
    monkeypatch.setenv("ML_ASSETS_RAY_HEAD_ADDRESS", "service-ip")
    monkeypatch.setenv("RAY_AUTH_TOKEN", RAY_TOKEN)  # the run pods' env from the same Secret
    return control_plane


def cancel_probe_run(
    admin, home: Path, env: dict, started, timeout: float = 60, exit_timeout: float = 90
) -> None:
    """Runs `probe_job` in a run process of its own (`probe_defs`), sends it SIGINT, what
    Dagster's run cancellation sends, once its RayCluster exists and `started()` holds, and
    checks that the run ended interrupted."""
    import os
    import signal
    import subprocess
    import sys

    import dagster as dg

    home.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-m", "ml_assets_tests.kube.probe_defs"],
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: list_rayclusters(admin), 60, "the run's RayCluster")
        wait_for(started, timeout, "the cluster's creation to be under way")
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=exit_timeout)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert "DagsterExecutionInterruptedError" in output or "KeyboardInterrupt" in output
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.is_finished


BUCKET = "ml-assets"
STORAGE_SECRET = "ml-assets-storage"  # the Secret the RayCluster template's envFrom reads


@contextmanager
def s3_in_node(cluster) -> Iterator:
    """SeaweedFS in the node's network namespace, on the node's address, with bucket
    `ml-assets`: pods reach it as a store in the cluster's network, the host through the node's
    link. Its endpoint and credentials are in Secret `ml-assets-storage` for the Ray pods (create
    clusters after this) and in the server's `environment` for this process."""
    from kubernetes import client

    from ml_assets_tests.object_store import S3Server

    network = cluster.network
    server = S3Server.start(
        host=network.node_address, wrap=lambda command: network.command(*command)
    )
    core = client.CoreV1Api(cluster.control_plane.api_client())
    try:
        server.create_bucket(BUCKET)
        core.create_namespaced_secret(
            NAMESPACE, {"metadata": {"name": STORAGE_SECRET}, "stringData": server.environment}
        )
        yield server
    finally:
        try:
            core.delete_namespaced_secret(STORAGE_SECRET, NAMESPACE)
        except client.ApiException as error:
            if error.status != 404:
                raise
        server.stop()


@pytest.fixture
def node_s3(dev_cluster, monkeypatch):
    """`s3_in_node`, its credentials in the AWS_* variables of this process."""
    with s3_in_node(dev_cluster) as server:
        for variable, value in server.environment.items():
            monkeypatch.setenv(variable, value)
        yield server


@contextmanager
def postgres_in_node(cluster) -> Iterator[PostgresServer]:
    """PostgreSQL in the node's network namespace, on the node's address: the Dagster instance
    the run pods and this host share, as a managed Postgres would be."""
    network = cluster.network
    server = PostgresServer.start(
        free_port(), host=network.node_address,
        wrap=lambda command: network.command(*command),
        trusted_networks=(network.pod_cidr, f"{network.host_address}/32"),  # pods, this host
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def node_postgres(dev_cluster):
    with postgres_in_node(dev_cluster) as server:
        yield server


@contextmanager
def mlflow_in_node(cluster, root: Path) -> Iterator[str]:
    """`mlflow server` in the node's network namespace, on the node's address: the tracking
    server a deployment runs as a service of its own. Its artifacts sit on its own disk under
    `root` and clients reach them only through it (`mlflow-artifacts:`), so a run pod needs its
    address and nothing else. (A bucket as its artifact store would need boto3 in the server's
    image.)"""
    from ml_assets_tests.conftest import running_mlflow_server

    network = cluster.network
    root.mkdir()
    with running_mlflow_server(
        root, host=network.node_address, wrap=lambda command: network.command(*command)
    ) as url:
        yield url


@pytest.fixture
def node_mlflow(dev_cluster, tmp_path):
    with mlflow_in_node(dev_cluster, tmp_path / "mlflow-server") as url:
        yield url
