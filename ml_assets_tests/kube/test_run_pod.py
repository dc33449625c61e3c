"""The Dagster step in a run pod of its own, launched by dagster-k8s's K8sRunLauncher as the
daemon launches it in production: `dagster job launch` on this host submits `ray_cluster_check`
to an instance in PostgreSQL; the launcher, with the `dagster` account's token, creates the run's
Job; the run pod (the code location's account, the Helm values' security contexts, nothing
shared with this host but the network) loads `ml_assets.definitions` from the image, creates its
RayCluster through the in-cluster API, reaches the head by its Service's DNS name, sends its
driver with the token from the Secret, and keeps its output and X-Ray record in the bucket."""

import time

import pytest

from ml_assets.storage import open_root
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import (
    BUCKET,
    NAMESPACE,
    RAY_TOKEN,
    list_rayclusters,
    ray_pods,
    wait_for,
)
from ml_assets_tests.kube.run_pods import (
    account_kubeconfig,
    code_location_env,
    create_instance,
    delete_runs,
    finished_run,
    instance_yaml,
    launch,
    run_pods,
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
    launcher_kubeconfig = account_kubeconfig(
        real_operator.control_plane, "dagster", tmp_path / "dagster.kubeconfig"
    )
    env = code_location_env(root)
    create_instance(admin, home, instance_yaml(node_postgres, launcher_kubeconfig, env))
    try:
        run_id = launch(home, env, "ray_cluster_check")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            began = time.monotonic()
            run = finished_run(instance, admin, run_id, timeout=600)
            print(f"run {run_id}: {run.status} {time.monotonic() - began:.0f}s after launch")
            messages = [entry.user_message for entry in instance.all_logs(run_id)]
            pods = run_pods(admin, run_id)
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
        delete_runs(admin)
