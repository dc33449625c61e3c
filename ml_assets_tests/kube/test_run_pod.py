"""The Dagster step in a run pod of its own, launched by dagster-k8s's K8sRunLauncher as the
daemon launches it in production: `dagster job launch` on this host submits `ray_cluster_check`
to an instance in PostgreSQL; the launcher, with the `dagster` account's token, creates the run's
Job; the run pod (the code location's account, the Helm values' security contexts, nothing
shared with this host but the network) loads `ml_assets.definitions` from the image, creates its
RayCluster through the in-cluster API, reaches the head by its Service's DNS name, sends its
driver with the token from the Secret, and keeps its output and X-Ray record in the bucket."""

import os
import subprocess
import sys
import time

import pytest
import yaml

from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.conftest import free_port
from ml_assets_tests.kube.conftest import (
    BUCKET,
    NAMESPACE,
    RAY_TOKEN,
    STORAGE_SECRET,
    list_rayclusters,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.control_plane import kubeconfig
from ml_assets_tests.kube.test_helm_values import VALUES
from ml_assets_tests.services import PostgresServer

INSTANCE_MAP = "dagster-instance"
DAGSTER_HOME_IN_POD = "/opt/dagster/dagster_home"


@pytest.fixture
def node_postgres(dev_cluster):
    """PostgreSQL in the node's network namespace, on the node's address: the Dagster instance
    the run pod and this host share, as a managed Postgres would be."""
    network = dev_cluster.network
    server = PostgresServer.start(
        free_port(), host=network.node_address,
        wrap=lambda command: network.command(*command),
        trusted_networks=(network.pod_cidr, f"{network.host_address}/32"),  # pods, this host
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def account_kubeconfig(control_plane, account: str, path) -> str:
    """A kubeconfig that authenticates as `account` (a TokenRequest, as its pod would get)."""
    from kubernetes import client

    token = (
        client.CoreV1Api(control_plane.api_client())
        .create_namespaced_service_account_token(
            account, NAMESPACE, {"spec": {"audiences": ["https://kubernetes.default.svc"]}}
        )
        .status.token
    )
    path.write_text(yaml.safe_dump(kubeconfig(control_plane.url, control_plane.pki.ca, token)))
    return str(path)


def code_location_env(storage_root: str) -> dict[str, str]:
    """The settings the code location and its run pods share (the user-code deployment's env)."""
    return {
        "ML_ASSETS_RAY": "kuberay",
        "ML_ASSETS_RAY_PROFILE": "dev",
        "ML_ASSETS_STORAGE_ROOT": storage_root,
        "RAY_AUTH_TOKEN": RAY_TOKEN,
    }


def instance_yaml(postgres: PostgresServer, launcher_kubeconfig: str, storage_root: str) -> str:
    """The instance: runs and events in PostgreSQL, runs launched as Jobs in `ml-assets` with the
    run pod that `k8s/helm/dagster-values.yaml` describes (its security contexts and account),
    the pods' Python environment from its claim, small requests for the 2-core node."""
    run_config = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    secret = {"name": "ml-assets-ray-auth", "key": "auth_token"}
    token = {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": secret}}
    launcher = {
        "job_namespace": NAMESPACE,
        "load_incluster_config": False,
        "kubeconfig_file": launcher_kubeconfig,
        "job_image": "ml-assets.local/ml-assets:dev-ray2.60.0-py311",
        "image_pull_policy": "Never",
        "service_account_name": "ml-assets-code-location",
        "instance_config_map": INSTANCE_MAP,
        "dagster_home": DAGSTER_HOME_IN_POD,
        "env_secrets": [STORAGE_SECRET],
        "env_vars": [
            f"{name}={value}"
            for name, value in code_location_env(storage_root).items()
            if name != "RAY_AUTH_TOKEN"  # from its Secret, below
        ]
        + ["ML_ASSETS_HOME=/tmp/ml-assets"],
        "volumes": [
            {
                "name": "environment",
                "persistentVolumeClaim": {"claimName": "ml-assets-environment", "readOnly": True},
            }
        ],  # fmt: skip
        "volume_mounts": [
            {"name": "environment", "mountPath": "/opt/ml-assets/env", "readOnly": True}
        ],  # fmt: skip
        "run_k8s_config": {
            "pod_spec_config": run_config["podSpecConfig"],
            "container_config": {
                "securityContext": run_config["containerConfig"]["securityContext"],
                "env": [token],
                "resources": {
                    "requests": {"cpu": "200m", "memory": "768Mi"},
                    "limits": {"memory": "2Gi"},
                },  # fmt: skip
            },
        },
        "fail_pod_on_run_failure": True,
    }
    postgres_config = {"hostname": postgres.host, "port": postgres.port,
                       "username": "postgres", "password": "", "db_name": "postgres",
                       # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; psycopg2 is locked.
                       "scheme": "postgresql+psycopg2"}  # fmt: skip
    return yaml.safe_dump(
        {
            "storage": {"postgres": {"postgres_db": postgres_config}},
            # Launch at once: in production the daemon takes runs off the queue and launches
            # them through the same launcher.
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "DefaultRunCoordinator",
            },  # fmt: skip
            "run_launcher": {
                "module": "dagster_k8s",
                "class": "K8sRunLauncher",
                "config": launcher,
            },  # fmt: skip
            "telemetry": {"enabled": False},
        }
    )


@pytest.mark.slow
def test_a_run_pod_launched_as_in_production_checks_its_ray_cluster(
    real_operator, node_s3, node_postgres, tmp_path
):
    import dagster as dg
    from kubernetes import client

    admin = real_operator.control_plane.api_client()
    core = client.CoreV1Api(admin)
    root = f"s3://{BUCKET}/run-pod"
    home = tmp_path / "dagster_home"
    home.mkdir()
    launcher_kubeconfig = account_kubeconfig(
        real_operator.control_plane, "dagster", tmp_path / "dagster.kubeconfig"
    )
    (home / "dagster.yaml").write_text(instance_yaml(node_postgres, launcher_kubeconfig, root))
    core.create_namespaced_config_map(
        NAMESPACE,
        {"metadata": {"name": INSTANCE_MAP},
         "data": {"dagster.yaml": (home / "dagster.yaml").read_text()}},
    )  # fmt: skip
    try:
        launched = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "launch", "-m", "ml_assets.definitions",
             "-j", "ray_cluster_check"],
            env={**os.environ, **code_location_env(root), "DAGSTER_HOME": str(home)},
            capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert launched.returncode == 0, launched.stdout + launched.stderr
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (record,) = instance.get_run_records()
            run_id = record.dagster_run.run_id
            began = time.monotonic()
            run = wait_for(
                lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished and r,
                600,
                "the run pod to finish the run",
            )
            print(f"run {run_id}: {run.status} {time.monotonic() - began:.0f}s after launch")
            messages = [entry.user_message for entry in instance.all_logs(run_id)]
            pods = core.list_namespaced_pod(
                NAMESPACE, label_selector=f"dagster/run-id={run_id}"
            ).items
            if run.status != dg.DagsterRunStatus.SUCCESS:
                logs = [core.read_namespaced_pod_log(p.metadata.name, NAMESPACE) for p in pods]
                pytest.fail(f"run {run.status}:\n" + "\n".join(messages[-40:] + logs)[-8000:])
            (output,) = [
                e.dagster_event.event_specific_data.metadata
                for e in instance.all_logs(run_id)
                if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_OUTPUT"
            ]
        # The run ran in a pod of the cluster, as the code location's account, not on this host.
        (pod,) = pods
        wait_for(
            lambda: (
                core.read_namespaced_pod(pod.metadata.name, NAMESPACE).status.phase == "Succeeded"
            ),
            60,
            "the run pod to exit",
        )
        assert pod.spec.service_account_name == "ml-assets-code-location"
        assert pod.metadata.labels["app.kubernetes.io/component"] == "run_worker"
        assert pod.status.pod_ip.startswith("10.214.")
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
        # Its Ray task ran on the worker pod of the cluster it created, which is gone.
        cluster = output["cluster"].value
        assert output["task_host"].value.startswith(f"{cluster}-")
        assert "worker" in output["task_host"].value and output["nodes"].value == 2
        assert list_rayclusters(admin) == []
        wait_for(lambda: not ray_pods(admin), 90, "the cluster's pods to be deleted")
        (xray,) = load_records(open_root(f"{root}/xray"), run_id)
        assert xray.cluster == cluster and "deleted" in xray.timeline
        assert {s["node"] for s in xray.samples} >= {output["task_host"].value}
        assert not [m for m in messages if RAY_TOKEN in m]
    finally:
        core.delete_namespaced_config_map(INSTANCE_MAP, NAMESPACE)
        for job in client.BatchV1Api(admin).list_namespaced_job(NAMESPACE).items:
            client.BatchV1Api(admin).delete_namespaced_job(
                job.metadata.name, NAMESPACE, propagation_policy="Background"
            )
        wait_for(
            lambda: (
                not core.list_namespaced_pod(
                    NAMESPACE, label_selector="app.kubernetes.io/component=run_worker"
                ).items
            ),
            90,
            "the run pods to be deleted",
        )
