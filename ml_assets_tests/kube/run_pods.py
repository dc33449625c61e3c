"""Runs launched into run pods as production launches them: an instance in PostgreSQL on the
node's address, dagster-k8s's K8sRunLauncher with the `dagster` account's token, and the run pod
that `k8s/helm/dagster-values.yaml` describes (its security contexts and account)."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ml_assets.ray.profiles import DEFAULT_PROFILES_DIR
from ml_assets_tests.kube.conftest import NAMESPACE, RAY_TOKEN, STORAGE_SECRET, wait_for
from ml_assets_tests.kube.control_plane import kubeconfig
from ml_assets_tests.kube.test_helm_values import VALUES
from ml_assets_tests.services import PostgresServer

INSTANCE_MAP = "dagster-instance"
DAGSTER_HOME_IN_POD = "/opt/dagster/dagster_home"
IMAGE = "ml-assets.local/ml-assets:dev-ray2.60.0-py311"
RUN_CONFIG = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
PROFILES = "ml-assets-profiles"  # a ConfigMap of cluster profiles, mounted into the run pods
PROFILES_DIR = "/opt/ml-assets/profiles"
RUN_WORKER = "app.kubernetes.io/component=run_worker"  # the label K8sRunLauncher gives run pods


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


def code_location_env(storage_root: str, **settings: str) -> dict[str, str]:
    """The settings the code location and its run pods share (the user-code deployment's env)."""
    return {
        "ML_ASSETS_RAY": "kuberay",
        "ML_ASSETS_RAY_PROFILE": "dev",
        "ML_ASSETS_STORAGE_ROOT": storage_root,
        "RAY_AUTH_TOKEN": RAY_TOKEN,
        **settings,
    }


def instance_yaml(
    postgres: PostgresServer,
    launcher_kubeconfig: str,
    env: dict[str, str],
    *,
    cpu_request: str = "200m",
    job_ttl_s: int | None = None,
    config_maps: dict[str, str] | None = None,
) -> str:
    """The instance: runs and events in PostgreSQL, runs launched as Jobs in `ml-assets` with the
    values' run pod (security contexts, account, the downward API's pod name and uid), the pods'
    Python environment from its claim, small requests for the 2-core node. `config_maps` mounts
    ConfigMaps (name -> folder) read-only; `job_ttl_s` replaces the values' Job TTL."""
    secret = {"name": "ml-assets-ray-auth", "key": "auth_token"}
    token = {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": secret}}
    volumes = [
        {"name": "environment",
         "persistentVolumeClaim": {"claimName": "ml-assets-environment", "readOnly": True}}
    ]  # fmt: skip
    mounts = [{"name": "environment", "mountPath": "/opt/ml-assets/env", "readOnly": True}]
    for name, folder in (config_maps or {}).items():
        volumes.append({"name": name, "configMap": {"name": name}})
        mounts.append({"name": name, "mountPath": folder, "readOnly": True})
    job_spec = dict(RUN_CONFIG["jobSpecConfig"])
    if job_ttl_s is not None:
        job_spec["ttlSecondsAfterFinished"] = job_ttl_s
    launcher = {
        "job_namespace": NAMESPACE,
        "load_incluster_config": False,
        "kubeconfig_file": launcher_kubeconfig,
        "job_image": IMAGE,
        "image_pull_policy": "Never",
        "service_account_name": "ml-assets-code-location",
        "instance_config_map": INSTANCE_MAP,
        "dagster_home": DAGSTER_HOME_IN_POD,
        "env_secrets": [STORAGE_SECRET],
        "env_vars": [
            f"{name}={value}" for name, value in env.items() if name != "RAY_AUTH_TOKEN"
        ]  # the token comes from its Secret, below
        + ["ML_ASSETS_HOME=/tmp/ml-assets"],
        "volumes": volumes,
        "volume_mounts": mounts,
        "run_k8s_config": {
            "pod_spec_config": RUN_CONFIG["podSpecConfig"],
            "container_config": {
                "securityContext": RUN_CONFIG["containerConfig"]["securityContext"],
                "env": [*RUN_CONFIG["containerConfig"]["env"], token],
                "resources": {
                    "requests": {"cpu": cpu_request, "memory": "768Mi"},
                    "limits": {"memory": "2Gi"},
                },  # fmt: skip
            },
            "job_spec_config": job_spec,
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


def create_instance(admin, home, instance: str) -> None:
    """`$DAGSTER_HOME/dagster.yaml` for this host and the ConfigMap the run pods read it from."""
    from kubernetes import client

    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(instance)
    client.CoreV1Api(admin).create_namespaced_config_map(
        NAMESPACE, {"metadata": {"name": INSTANCE_MAP}, "data": {"dagster.yaml": instance}}
    )


def launch(home, env: dict[str, str], job: str, *extra: str) -> str:
    """`dagster job launch` from this host, as the UI's launch button does; the run's id."""
    import dagster as dg

    launched = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "launch", "-m", "ml_assets.definitions",
         "-j", job, *extra],
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout + launched.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
        return record.dagster_run.run_id


def kill_pod(uid: str) -> int:
    """SIGKILLs every process of the pod's containers (found by the pod's cgroup, the node being
    this host), leaving its sandbox's pause process: what the OOM killer or a lost node does to a
    run, with no chance to clean up."""
    killed = 0
    for proc in Path("/proc").iterdir():
        try:
            cgroups = (proc / "cgroup").read_text()
            program = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except (OSError, NotADirectoryError):
            continue
        if f"pod{uid}" in cgroups and not program.endswith(b"pause"):
            os.kill(int(proc.name), signal.SIGKILL)
            killed += 1
    return killed


def run_pods(admin, run_id: str) -> list:
    from kubernetes import client

    return (
        client.CoreV1Api(admin)
        .list_namespaced_pod(NAMESPACE, label_selector=f"dagster/run-id={run_id}")
        .items
    )


def delete_runs(admin) -> None:
    """The instance's and the profiles' ConfigMaps and every run Job, then waits for their pods
    to go."""
    from kubernetes import client

    core, batch = client.CoreV1Api(admin), client.BatchV1Api(admin)
    for config_map in (INSTANCE_MAP, PROFILES):
        try:
            core.delete_namespaced_config_map(config_map, NAMESPACE)
        except client.ApiException as error:
            if error.status != 404:
                raise
    for job in batch.list_namespaced_job(NAMESPACE).items:
        batch.delete_namespaced_job(job.metadata.name, NAMESPACE, propagation_policy="Background")
    # A run pod whose Job was deleted without propagation (a failed termination) has no owner.
    core.delete_collection_namespaced_pod(NAMESPACE, label_selector=RUN_WORKER)
    wait_for(lambda: not run_worker_pods(admin), 90, "the run pods to be deleted")


def run_worker_pods(admin) -> list:
    """Every run pod in the namespace, of any run."""
    from kubernetes import client

    return client.CoreV1Api(admin).list_namespaced_pod(NAMESPACE, label_selector=RUN_WORKER).items


def training_profile(folder) -> str:
    """The dev profile with a worker Ray counts as 2 CPUs (KubeRay rounds a limit of 1.01 up):
    one for the training worker and one for Ray Data's reads, on a 2-core node; at 0.5 CPU the
    head took 294 s to start Ray, at the dev profile's 1 CPU nothing else fits. The head holds
    the job's driver (torch, Ray Train's controller and Ray Data's coordinator) beside Ray's own
    processes: at the dev profile's 2.5 GiB Ray's memory monitor killed the driver."""
    profile = yaml.safe_load((DEFAULT_PROFILES_DIR / "dev.yaml").read_text())
    profile |= {"name": "dev-train", "head_cpu": 0.8, "worker_cpu": 1.01}
    profile |= {"head_memory_gib": 4, "worker_memory_gib": 3.5}
    profile["quota"] |= {"max_memory_gib": 10}
    (folder / "dev-train.yaml").write_text(yaml.safe_dump(profile))
    return "dev-train"


def train_from_this_host(monkeypatch, tmp_path, root: str) -> None:
    """Steps run on this host train on `training_profile`'s ephemeral clusters and keep
    everything under `root` (a bucket's URI)."""
    from ml_assets import environment

    monkeypatch.setenv(environment.STORAGE_ROOT, root)
    monkeypatch.setenv("ML_ASSETS_RAY_PROFILE", training_profile(tmp_path))
    monkeypatch.setenv("ML_ASSETS_RAY_PROFILES_DIR", str(tmp_path))


@dataclass(frozen=True)
class TrainingDeployment:
    """Where training runs are launched from: the instance's home on this host, and the env of
    this host's launching process (which reads the profile from `tmp_path`)."""

    home: Path
    env: dict[str, str]

    def launch(self, request) -> str:
        """`train_and_publish` for `request` (a runner.PipelineRequest) in a run pod of its own."""
        config = self.home / f"run-{request.fingerprint()}.yaml"
        config.write_text(yaml.safe_dump(request.training_run_config()))
        return launch(self.home, self.env, "train_and_publish", "--config", str(config))


def training_deployment(
    admin, control_plane, postgres, tmp_path: Path, root: str, *, job_ttl_s: int | None = None,
    **settings: str,
) -> TrainingDeployment:  # fmt: skip
    """A deployment whose run pods train on `training_profile`'s clusters (the profile in a
    ConfigMap, mounted where ML_ASSETS_RAY_PROFILES_DIR points), with `settings` added to the
    code location's env."""
    from kubernetes import client

    profile = training_profile(tmp_path)
    client.CoreV1Api(admin).create_namespaced_config_map(
        NAMESPACE,
        {"metadata": {"name": PROFILES},
         "data": {f"{profile}.yaml": (tmp_path / f"{profile}.yaml").read_text()}},
    )  # fmt: skip
    launcher = account_kubeconfig(control_plane, "dagster", tmp_path / "dagster.kubeconfig")
    env = code_location_env(
        root, ML_ASSETS_RAY_PROFILE=profile, ML_ASSETS_RAY_PROFILES_DIR=PROFILES_DIR, **settings
    )
    home = tmp_path / "dagster_home"
    instance = instance_yaml(
        postgres, launcher, env,
        cpu_request="10m",  # the cluster's head 0.8 + worker 1.01 CPU of the node's 2
        job_ttl_s=job_ttl_s, config_maps={PROFILES: PROFILES_DIR},
    )  # fmt: skip
    create_instance(admin, home, instance)
    return TrainingDeployment(home, env | {"ML_ASSETS_RAY_PROFILES_DIR": str(tmp_path)})


def finished_run(instance, admin, run_id: str, timeout: float = 900):
    """The run once it has ended; a run that did not succeed fails the test with the end of
    its event log and its pod's log."""
    import dagster as dg
    from kubernetes import client

    run = wait_for(
        lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished and r,
        timeout,
        f"run {run_id} to finish in its run pod",
    )
    if run.status != dg.DagsterRunStatus.SUCCESS:
        messages = [entry.user_message for entry in instance.all_logs(run_id)]
        core = client.CoreV1Api(admin)
        logs = [
            core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE)
            for pod in run_pods(admin, run_id)
        ]
        raise AssertionError(f"run {run.status}:\n" + "\n".join(messages[-40:] + logs)[-8000:])
    return run
