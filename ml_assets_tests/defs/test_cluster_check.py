"""`ray_cluster_check` on the embedded Ray (the job any deployment is checked with first), and the
embedded Ray's life: one per step's Ray work."""

import socket

import dagster as dg
import ray

from ml_assets.definitions import build_definitions
from ml_assets.defs.cluster_check import CHECK
from ml_assets.defs.ray_resource import LocalRayCluster, run_driver, step_cluster
from ml_assets.xray.record import load_records


def test_the_check_job_runs_a_task_and_reports_the_cluster(instance, ml_home):
    definitions = build_definitions("local", resources={"ray_cluster": LocalRayCluster(num_cpus=1)})
    result = definitions.resolve_job_def("ray_cluster_check").execute_in_process(instance=instance)
    assert result.success
    report = result.output_for_node("check_ray_cluster")
    assert report["cpus"] == 1 and report["nodes"] == 1
    assert report["task_host"] == socket.gethostname()  # the embedded Ray runs on this host
    (observed,) = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT
    ]
    assert observed["cluster"].value == "local-ray"


@dg.asset
def first_probe(context: dg.AssetExecutionContext, ray_cluster: dg.ResourceParam[LocalRayCluster]):
    """Two pieces of Ray work on one cluster, which the step holds around them."""
    with step_cluster(ray_cluster, context):
        run_driver(ray_cluster, context, CHECK, {})
        assert ray.is_initialized()
        return run_driver(ray_cluster, context, CHECK, {})


@dg.asset(deps=[first_probe])
def second_probe(context: dg.AssetExecutionContext, ray_cluster: dg.ResourceParam[LocalRayCluster]):
    run_driver(ray_cluster, context, CHECK, {})
    raise RuntimeError("injected: the step fails after its Ray work")


def test_each_ray_step_of_an_in_process_run_gets_a_cluster_of_its_own(instance, ml_home):
    """An in-process run sets its resources up once, at run start; each step's Ray still
    starts with that step's Ray work and stops when it returns (or when the step lets go of
    it), and has a record of its own with that step's outcome."""
    result = dg.materialize(
        [first_probe, second_probe],
        resources={"ray_cluster": LocalRayCluster(num_cpus=1)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    records = {r.step: r for r in load_records(ml_home / "xray", result.run_id)}
    assert set(records) == {"first_probe", "second_probe"}
    first, second = records["first_probe"], records["second_probe"]
    assert first.timeline["deleted"] < second.timeline["requested"]
    assert (first.outcome, second.outcome) == ("succeeded", "failed")
    assert "injected: the step fails after its Ray work" in (second.error or "")
    assert not ray.is_initialized()
