"""Real Dagster materializations in `kuberay` mode on the real operator: one RayCluster per
materialization, its Ray work sent to the head pod as a Ray job, the cluster always gone after,
with its pods, containers and pod network namespaces."""

import json
import time

import dagster as dg
import pytest

from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.defs.ray_resource import run_driver, step_cluster
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import GROUP, PLURAL, RAY_TOKEN, VERSION, list_rayclusters
from ml_assets_tests.kube.probe_defs import CHECK, flaky_job
from ml_assets_tests.kube.test_real_operator import NodeWatch, assert_node_clean


def kuberay(dev_cluster, **overrides) -> KubeRayEphemeralCluster:
    return KubeRayEphemeralCluster(
        profile="dev",
        kube_config=str(dev_cluster.kubeconfig),
        ray_auth_token=RAY_TOKEN,
        head_address="service-ip",  # this host is routed into the cluster, without its DNS
        **overrides,
    )


def step_error(result) -> str:
    """Every error the run reported: step failures and resource start-up failures alike."""
    errors = [getattr(event.event_specific_data, "error", None) for event in result.all_events]
    return "\n".join(error.to_string() for error in errors if error is not None)


def created_clusters(instance, run_id: str) -> list[str]:
    """The RayClusters the run's steps said they created, in order."""
    prefix = "creating RayCluster ml-assets/"
    return [
        entry.user_message.removeprefix(prefix).split()[0]
        for entry in instance.all_logs(run_id)
        if entry.user_message.startswith(prefix)
    ]


@dg.asset
def labelled_probe(context: dg.AssetExecutionContext, ray_cluster: KubeRayEphemeralCluster):
    """The cluster check's report, and the labels the RayCluster carries while it lives (the
    step holds its cluster across its Ray work and the look at it)."""
    from kubernetes import client

    with step_cluster(ray_cluster, context):
        report = run_driver(ray_cluster, context, CHECK, {})
        api = client.CustomObjectsApi(ray_cluster.client.api_client)
        found = api.get_namespaced_custom_object(
            GROUP, VERSION, ray_cluster.cluster_namespace, PLURAL, ray_cluster.name
        )
    labels, annotations = found["metadata"]["labels"], found["metadata"].get("annotations", {})
    return dg.MaterializeResult(
        metadata={"cluster": ray_cluster.name, "labels": labels, "annotations": annotations}
        | report
    )


@dg.asset
def diverging_probe(context: dg.AssetExecutionContext, ray_cluster: KubeRayEphemeralCluster):
    """Its Ray job fails on the cluster: the check asks for more CPUs than the cluster has."""
    run_driver(ray_cluster, context, CHECK, {"min_cpus": 1000})


def test_a_steps_ray_work_runs_on_its_own_cluster_which_is_gone_afterwards(
    real_operator, admin, instance, ml_home
):
    watch = NodeWatch(real_operator)
    result = dg.materialize(
        [labelled_probe], resources={"ray_cluster": kuberay(real_operator)}, instance=instance
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("labelled_probe")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    name = metadata["cluster"]
    assert created_clusters(instance, result.run_id) == [name]
    # The task ran in the worker pod, scheduled by a driver on the head pod: nothing on this host.
    assert metadata["task_host"].startswith(f"{name}-") and "worker" in metadata["task_host"]
    assert metadata["nodes"] == 2 and metadata["cpus"] >= 1
    labels = metadata["labels"]
    assert labels["ml-assets.io/run-id"] == result.run_id
    assert labels["ml-assets.io/asset"] == "labelled_probe"
    assert labels["ml-assets.io/profile"] == "dev"
    assert labels["ml-assets.io/code-version"]
    assert_node_clean(admin, watch)
    assert watch.most_tasks >= 2  # head and worker containers ran

    (record,) = load_records(ml_home / "xray", result.run_id)
    assert record.outcome == "succeeded" and record.cluster == name
    events = ["requested", "created", "ready", "connected", "driver_submitted", "deleted"]
    assert list(record.timeline) == events
    assert sorted(record.timeline.values()) == list(record.timeline.values())
    # X-Ray's probes ran inside the job and sent their samples and the nodes' logs back.
    sampled = {sample["node"] for sample in record.samples if sample["process"] == "node"}
    assert len(sampled) == 2 and metadata["task_host"] in sampled, sampled  # head and worker
    worker_logs = [name for name in record.logs if name.startswith(metadata["task_host"])]
    assert any(name.endswith("/raylet.out") for name in worker_logs), sorted(record.logs)

    # The token reached the pods and the Jobs API, and nothing kept it: not the step's log,
    # the asset's metadata, the RayCluster's labels or annotations, or the X-Ray record with
    # the Ray pods' log tails.
    kept = [entry.user_message for entry in instance.all_logs(result.run_id)]
    kept += [json.dumps(metadata, default=str)]
    kept += [path.read_text() for path in (ml_home / "xray").rglob("*") if path.is_file()]
    assert not [text for text in kept if RAY_TOKEN in text]


def test_a_ray_job_that_fails_fails_the_step_and_still_deletes_the_cluster(
    real_operator, admin, instance, ml_home
):
    watch = NodeWatch(real_operator)
    result = dg.materialize(
        [diverging_probe], resources={"ray_cluster": kuberay(real_operator)}, instance=instance,
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    # The job's exception, raised on the head pod, comes back through Dagster Pipes.
    assert "fewer than the 1000 asked for" in step_error(result)
    assert_node_clean(admin, watch)
    (record,) = load_records(ml_home / "xray", result.run_id)
    assert record.outcome == "failed" and "fewer than the 1000 asked for" in (record.error or "")
    assert "deleted" in record.timeline
    assert any("gcs_server" in name for name in record.logs)  # sent back by the failed job


def test_a_bad_profile_fails_in_preflight_and_creates_nothing(dev_cluster, admin, instance):
    started = time.monotonic()
    result = dg.materialize(
        [labelled_probe], resources={"ray_cluster": kuberay(dev_cluster, workers=64)},
        instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert "asks for 64 workers, above its quota of 2" in step_error(result)
    assert time.monotonic() - started < 10
    assert created_clusters(instance, result.run_id) == [] and list_rayclusters(admin) == []


@pytest.mark.slow
def test_every_step_retry_gets_a_new_cluster_and_none_is_left(
    kuberay_env, real_operator, admin, instance
):
    """Multiprocess executor, as in production: each attempt is a process with its own cluster."""
    watch = NodeWatch(real_operator)
    result = dg.execute_job(dg.reconstructable(flaky_job), instance=instance)
    assert result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1
    first, second = created_clusters(instance, result.run_id)  # attempt 0 and attempt 1
    assert first != second
    assert_node_clean(admin, watch)
