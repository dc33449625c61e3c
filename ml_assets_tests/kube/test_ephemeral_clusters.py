"""Real Dagster materializations in `kuberay` mode: one RayCluster per materialization, always gone.

The API server is real; the KubeRay operator's part is played by `fake_kuberay.py`, which starts a
real Ray head per cluster; the steps connect to it as Ray drivers through the 127.0.0.1 host seam.
"""

import os
import time

import dagster as dg
import mlflow
import pytest

from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.environment import local_mlflow_tracking_uri
from ml_assets.xray.record import EVENTS, load_records
from ml_assets_tests.kube.conftest import (
    NAMESPACE,
    RAY_TOKEN,
    cancel_probe_run,
    list_rayclusters,
    wait_for,
)
from ml_assets_tests.kube.probe_defs import cluster_probe, flaky_job

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kuberay(control_plane, **overrides) -> KubeRayEphemeralCluster:
    return KubeRayEphemeralCluster(
        kube_config=str(control_plane.kubeconfig),
        connect_host="127.0.0.1",
        driver="connect",  # the stand-in's head runs on this host, as no real head would
        ray_auth_token=RAY_TOKEN,
        **overrides,
    )


def materialize_on_kuberay(assets, control_plane, instance, **resource_overrides):
    return dg.materialize(
        assets,
        resources={"ray_cluster": kuberay(control_plane, **resource_overrides)},
        instance=instance,
        raise_on_error=False,
    )


def assert_nothing_left(admin, operator) -> None:
    from kubernetes import client

    assert list_rayclusters(admin) == []
    assert operator.heads == {}  # every Ray head stopped
    core = client.CoreV1Api(admin)
    # The head Pod and Service go with their owner: the real garbage collector deletes them.
    wait_for(
        lambda: (
            not core.list_namespaced_pod(NAMESPACE, label_selector="ray.io/cluster").items
            and not core.list_namespaced_service(NAMESPACE, label_selector="ray.io/cluster").items
        ),
        timeout=30,
        what="garbage collection of head pods and services",
    )


def step_error(result) -> str:
    """Every error the run reported: step failures and resource start-up failures alike."""
    errors = [getattr(event.event_specific_data, "error", None) for event in result.all_events]
    return "\n".join(error.to_string() for error in errors if error is not None)


def test_a_step_runs_on_its_own_cluster_which_is_gone_afterwards(
    control_plane, admin, operator, instance
):
    result = materialize_on_kuberay([cluster_probe], control_plane, instance)
    assert result.success
    metadata = result.asset_materializations_for_node("cluster_probe")[0].metadata
    assert metadata["cpus"].value == operator.ray_cpus  # the head the operator started
    (created,) = operator.created
    assert metadata["cluster"].value == created["name"]
    labels = created["labels"]
    assert labels["ml-assets.io/run-id"] == result.run_id
    assert labels["ml-assets.io/asset"] == "cluster_probe"
    assert labels["ml-assets.io/profile"] == "cpu-small"
    assert labels["ml-assets.io/code-version"]
    assert_nothing_left(admin, operator)


def test_readiness_timeout_fails_clearly_within_the_timeout_and_deletes(
    control_plane, admin, operator, instance
):
    operator.mode = "never_ready"
    started = time.monotonic()
    result = materialize_on_kuberay([cluster_probe], control_plane, instance, timeout=3)
    elapsed = time.monotonic() - started
    assert not result.success
    assert "was not ready within 3s; it is being deleted" in step_error(result)
    assert elapsed < 3 + 12  # the timeout plus Dagster's own start-up, not a minute
    assert len(operator.created) == 1
    assert_nothing_left(admin, operator)


def test_a_failing_step_deletes_its_cluster_and_its_xray_says_why(
    control_plane, admin, operator, instance, ml_home
):
    @dg.asset
    def diverging_training(ray_cluster: KubeRayEphemeralCluster):
        import ray

        assert ray.cluster_resources()["CPU"] > 0
        raise RuntimeError("loss is NaN")

    result = materialize_on_kuberay([diverging_training], control_plane, instance)
    assert "loss is NaN" in step_error(result)
    assert len(operator.created) == 1
    assert_nothing_left(admin, operator)
    (record,) = load_records(ml_home / "xray", result.run_id)
    assert record.outcome == "failed" and "loss is NaN" in (record.error or "")
    assert "deleted" in record.timeline and any("gcs_server" in n for n in record.logs)


def test_a_failure_before_the_delete_still_deletes_the_cluster(
    control_plane, admin, operator, instance, ml_home, monkeypatch
):
    """The event-log query and the disconnect run before the delete; neither may skip it."""
    from ray._private.worker import RayContext

    def event_log_down(*_args, **_kwargs):
        raise RuntimeError("event log unavailable")

    disconnect = RayContext.disconnect

    def failing_disconnect(self):
        disconnect(self)  # really disconnect, so that the next test's driver starts clean
        raise RuntimeError("GCS went away")

    monkeypatch.setattr("ml_assets.defs.xray_hooks.step_failure", event_log_down)
    monkeypatch.setattr(RayContext, "disconnect", failing_disconnect)
    result = materialize_on_kuberay([cluster_probe], control_plane, instance)
    assert result.success
    assert len(operator.created) == 1
    assert_nothing_left(admin, operator)
    warnings = "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "X-Ray: could not read the step's outcome: event log unavailable" in warnings
    assert "failed (GCS went away); deleting it" in warnings
    (record,) = load_records(ml_home / "xray", result.run_id)
    assert "deleted" in record.timeline


def test_a_bad_profile_fails_in_preflight_and_creates_nothing(
    control_plane, admin, operator, instance
):
    started = time.monotonic()
    result = materialize_on_kuberay([cluster_probe], control_plane, instance, workers=64)
    assert "asks for 64 workers, above its quota of 8" in step_error(result)
    assert time.monotonic() - started < 10
    assert operator.created == [] and list_rayclusters(admin) == []


@pytest.mark.slow
def test_every_step_retry_gets_a_new_cluster_and_none_is_left(
    kuberay_env, admin, operator, instance
):
    """Multiprocess executor, as in production: each attempt is a process with its own cluster."""
    result = dg.execute_job(dg.reconstructable(flaky_job), instance=instance)
    assert result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1
    assert len({c["name"] for c in operator.created}) == 2  # attempt 0 and attempt 1
    assert_nothing_left(admin, operator)


@pytest.mark.slow
def test_cancelling_the_run_while_its_cluster_is_being_created_deletes_it(
    kuberay_env, admin, operator, tmp_path
):
    """The run process gets SIGINT, which is what Dagster's run cancellation thread sends it."""
    operator.mode = "never_ready"
    cancel_probe_run(
        admin,
        tmp_path / "dagster_home",
        {"PYTHONPATH": REPO},
        lambda: operator.created,
        timeout=10,
        exit_timeout=60,
    )
    assert_nothing_left(admin, operator)


@pytest.mark.slow
def test_the_training_asset_trains_on_its_own_ephemeral_cluster(
    control_plane, admin, operator, instance, ml_home, tmp_path
):
    from ml_assets.defs.features.assets import feature_vocabulary
    from ml_assets.defs.resources import ImpressionSource, MlflowResource, StorageResource
    from ml_assets.defs.training.assets import ranking_model
    from ml_assets_tests.defs.test_bad_input import vocabulary_over_two_days

    resources = {
        "source": ImpressionSource(rows_per_day=4000),
        "storage": StorageResource(base_path=str(tmp_path / "storage")),
        "mlflow_tracking": MlflowResource(),
    }
    vocabulary_over_two_days(instance, resources)
    result = dg.materialize(
        [feature_vocabulary, ranking_model],
        selection=[ranking_model],
        resources={**resources, "ray_cluster": kuberay(control_plane)},
        instance=instance,
        run_config={"ops": {"ranking_model": {"config": {"epochs": 1, "num_workers": 1}}}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("ranking_model")[0].metadata
    (created,) = operator.created
    assert metadata["ray_cluster"].value == created["name"]
    assert created["labels"]["ml-assets.io/asset"] == "ranking_model"
    assert metadata["epochs"].value == 1 and metadata["dagster/row_count"].value > 0
    # A finite, sane loss: a diverged run reports nan or far above 0.7.
    assert metadata["final_train_loss"].value < 0.7
    assert_nothing_left(admin, operator)

    # X-Ray: the record outlives the cluster, with every lifecycle event in order.
    (record,) = load_records(ml_home / "xray", result.run_id)
    assert record.outcome == "succeeded" and record.cluster == created["name"]
    # The step joined as a driver (`driver: connect`), so no driver job was submitted.
    assert list(record.timeline) == [e for e in EVENTS if e != "driver_submitted"]
    assert sorted(record.timeline.values()) == list(record.timeline.values())
    workers = {s["process"] for s in record.samples if s["process"].startswith("train-worker")}
    assert workers and any(s["process"] == "node" for s in record.samples)
    assert any(name.endswith("/raylet.out") for name in record.logs)
    assert any("[ranking_model] epoch 0 done" in text for text in record.logs.values())
    assert record.epochs[0]["samples_per_second"] > 0 and record.cpus == 9  # cpu-small profile
    assert metadata["xray_utilization"].value.startswith("![utilization](data:image/png;base64,")
    assert metadata["xray_record"].value == str(
        ml_home / "xray" / result.run_id / "ranking_model" / "xray.json"
    )
    client = mlflow.MlflowClient(local_mlflow_tracking_uri())
    artifacts = {a.path for a in client.list_artifacts(metadata["mlflow_run_id"].value, "xray")}
    assert artifacts == {"xray/xray.json", "xray/report.html"}
