"""The pods `k8s/helm/dagster-values.yaml` describes pass Pod Security `restricted` on the 1.34
API server (server-side dry runs in the `ml-assets` namespace). The run pod is built by
dagster-k8s's own Job construction from the values' `runK8sConfig`, as K8sRunLauncher builds it;
the chart itself is not rendered here (it is not reachable from the test machines)."""

import pytest
import yaml
from kubernetes import client

from ml_assets_tests.kube.conftest import K8S_DIR, NAMESPACE
from ml_assets_tests.kube.test_rbac import account_api

VALUES = yaml.safe_load((K8S_DIR / "helm" / "dagster-values.yaml").read_text())
CODE_LOCATION = VALUES["dagster-user-deployments"]["deployments"][0]
IMAGE = f"{CODE_LOCATION['image']['repository']}:{CODE_LOCATION['image']['tag']}"


def run_job() -> dict:
    """The Job K8sRunLauncher creates for a run with these values and this code location."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
    )

    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    run_config = launcher["runK8sConfig"]
    context = K8sContainerContext(
        service_account_name=VALUES["dagster-user-deployments"]["serviceAccount"]["name"],
        env_secrets=[secret["name"] for secret in CODE_LOCATION["envSecrets"]],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
            {
                "pod_spec_config": run_config["podSpecConfig"],
                "container_config": run_config["containerConfig"],
                "job_spec_config": run_config["jobSpecConfig"],
            }
        ),
    )
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image=IMAGE,
            dagster_home="/opt/dagster/dagster_home",
            instance_config_map="dagster-instance",
            postgres_password_secret="dagster-postgresql-secret",
        ),
        ["dagster", "api", "execute_run", "{}"],
        "dagster-run-values-test",
        user_defined_k8s_config=context.run_k8s_config,
        component="run_worker",
    )
    manifest = client.ApiClient().sanitize_for_serialization(job)
    manifest["metadata"]["namespace"] = NAMESPACE
    return manifest


def pod(name: str, spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def described_pods() -> dict[str, dict]:
    """Every pod the values describe: the chart's webserver and daemon, the code server, and a
    run pod."""
    pods = {
        "run": pod("run", run_job()["spec"]["template"]["spec"]),
        "code-server": pod(
            "code-server",
            {
                "securityContext": CODE_LOCATION["podSecurityContext"],
                "containers": [
                    {
                        "name": "grpc",
                        "image": IMAGE,
                        "securityContext": CODE_LOCATION["securityContext"],
                    }
                ],
            },  # fmt: skip
        ),
    }
    for part in ("dagsterWebserver", "dagsterDaemon"):
        pods[part] = pod(
            part.lower(),
            {
                "securityContext": VALUES[part]["podSecurityContext"],
                "containers": [
                    {
                        "name": part.lower(),
                        "image": "docker.io/dagster/dagster-k8s",
                        "securityContext": VALUES[part]["securityContext"],
                    }
                ],
            },  # fmt: skip
        )
    return pods


@pytest.mark.parametrize("which", ["run", "code-server", "dagsterWebserver", "dagsterDaemon"])
def test_every_pod_the_dagster_values_describe_passes_pod_security_restricted(admin, which):
    manifest = described_pods()[which]
    # A refusal would raise 403 with the violations; a dry run sends nothing to the node.
    created = client.CoreV1Api(admin).create_namespaced_pod(NAMESPACE, manifest, dry_run="All")
    assert created.spec.security_context.seccomp_profile.type == "RuntimeDefault"


def test_dagster_may_launch_the_run_job_the_values_describe(control_plane):
    """As Dagster's own account, through RBAC and the admission policy on Jobs' accounts."""
    jobs = client.BatchV1Api(account_api(control_plane, "dagster"))
    created = jobs.create_namespaced_job(NAMESPACE, run_job(), dry_run="All")
    assert created.spec.template.spec.service_account_name == "ml-assets-code-location"
    assert created.spec.template.metadata.labels["app.kubernetes.io/component"] == "run_worker"
    # Deleted (with its pod, and the RayClusters that pod owns) 10 minutes after the run ended.
    assert created.spec.ttl_seconds_after_finished == 600
    env = {e.name: e.value_from for e in created.spec.template.spec.containers[0].env}
    assert env["ML_ASSETS_POD_UID"].field_ref.field_path == "metadata.uid"
