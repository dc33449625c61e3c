"""`ray_cluster_check` on the embedded Ray: the job any deployment is checked with first."""

import socket

import dagster as dg

from ml_assets.definitions import build_definitions
from ml_assets.defs.ray_resource import LocalRayCluster


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
