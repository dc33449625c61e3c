"""Fixtures that start real services (Dagster instance, MLflow server) and stop them."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from ml_assets_tests.services import PostgresServer, chromium_executable

VENV_BIN = Path(sys.executable).parent
S3_BUCKET = "ml-assets-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to a server started with start_new_session=True and all it spawned; SIGKILL
    what is still there after `timeout`."""
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


def step_span(instance, run_id: str, step: str) -> tuple[float, float]:
    """When the step started and when it succeeded (each exactly once), from the run's log."""
    entries = [e for e in instance.all_logs(run_id) if e.step_key == step]
    (started,) = [e.timestamp for e in entries
                  if e.dagster_event_type == dg.DagsterEventType.STEP_START]  # fmt: skip
    (succeeded,) = [e.timestamp for e in entries
                    if e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS]  # fmt: skip
    return started, succeeded


@pytest.fixture(scope="module")
def local_ray():
    """A Ray of this process for the module's tests (Ray Train's trainers run in it)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def ml_home(tmp_path, monkeypatch) -> Path:
    """A private ML_ASSETS_HOME: storage and the local MLflow store of one test."""
    home = tmp_path / "ml_home"
    monkeypatch.setenv("ML_ASSETS_HOME", str(home))
    return home


@pytest.fixture
def instance(tmp_path):
    """A real Dagster instance (SQLite storage) in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling a readiness probe, not synchronising on a guess
    raise TimeoutError(f"{url} not healthy after {timeout}s")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium; skips (fails under CI=true) where it is not installed."""
    return chromium_executable()


@pytest.fixture(scope="session")
def postgres_server():
    """The session's own PostgreSQL server (services.PostgresServer), stopped by PID after it."""
    server = PostgresServer.start(free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server, monkeypatch):
    """A fresh database on the session's PostgreSQL, in the DAGSTER_PG_* settings that
    `dagster.production.yaml` reads; dropped afterwards."""
    name = f"ml_assets_{uuid.uuid4().hex[:10]}"
    admin = postgres_server.connect()
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    for variable, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": name,
        "DAGSTER_PG_PORT": str(postgres_server.port),
    }.items():
        monkeypatch.setenv(variable, value)
    try:
        yield name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextlib.contextmanager
def running_mlflow_server(
    root: Path,
    host: str = "127.0.0.1",
    artifacts: str | None = None,
    wrap: Callable[[list[str]], list[str]] = list,
    env: dict[str, str] | None = None,
):
    """A real `mlflow server` (SQLite backend in `root`, served artifacts in `artifacts`, by
    default under `root`) on `host`; `wrap` runs it elsewhere (a network namespace). Yields its
    URL; stopped by its process group afterwards."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    log = open(root / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        wrap([str(VENV_BIN / "mlflow"), "server", "--host", host, "--port", str(port),
              "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
              "--artifacts-destination", artifacts or str(root / "artifacts")]),
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://{host}:{port}/health", process, timeout=90)
        yield f"http://{host}:{port}"
    finally:
        stop_process_group(process, timeout=20)
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1."""
    root = tmp_path_factory.mktemp("mlflow_server")
    try:
        with running_mlflow_server(root) as url:
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    """The session's own S3-compatible store (object_store.S3Server), stopped by PID after it."""
    from ml_assets_tests.object_store import S3Server

    server = S3Server.start()
    # One bucket and a prefix per test: the server gives every bucket volumes of its own, and a
    # bucket per test would use up its volume slots.
    server.create_bucket(S3_BUCKET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_root(s3_server, monkeypatch) -> str:
    """`s3://<the bucket>/<a fresh prefix>`, with the store's endpoint and credentials in the
    AWS_* variables every client reads (s3fs, polars, pyarrow, Ray's workers, child processes)."""
    for variable, value in s3_server.environment.items():
        monkeypatch.setenv(variable, value)
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
