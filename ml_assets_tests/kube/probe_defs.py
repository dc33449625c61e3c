"""Small assets on the `kuberay` Ray resource whose Ray work is `ml_assets.ray.cluster_check`'s
driver, for the lifecycle tests, including those that need a job by reference (multiprocess step
retries) or a separate run process (cancellation).

Run as `python -m ml_assets_tests.kube.probe_defs` with DAGSTER_HOME and the kuberay env set: it
executes `probe_job` on the instance and exits with 0 on success.
"""

import sys

import dagster as dg
from dagster_ray import RayResource

from ml_assets.defs.cluster_check import CHECK
from ml_assets.defs.ray_resource import ray_cluster_resource, run_driver


@dg.asset
def cluster_probe(context: dg.AssetExecutionContext, ray_cluster: RayResource):
    """Proves the step's Ray work ran on the cluster: its CPUs, nodes and a task's host."""
    report = run_driver(ray_cluster, context, CHECK, {})
    return dg.MaterializeResult(metadata={"cluster": ray_cluster.name, **report})


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
def flaky_probe(context: dg.AssetExecutionContext, ray_cluster: RayResource):
    """Fails its first attempt after its Ray work ran on the cluster; the retry succeeds."""
    run_driver(ray_cluster, context, CHECK, {})
    if context.retry_number == 0:
        raise RuntimeError(f"injected failure on attempt 0 on {ray_cluster.name}")
    return dg.MaterializeResult(metadata={"cluster": ray_cluster.name})


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[cluster_probe, flaky_probe],
        jobs=[
            dg.define_asset_job("probe_job", selection=[cluster_probe]),
            dg.define_asset_job(
                "flaky_job", selection=[flaky_probe], executor_def=dg.multiprocess_executor
            ),
        ],
        resources={"ray_cluster": ray_cluster_resource("kuberay")},
    )


def probe_job() -> dg.JobDefinition:
    return build_defs().resolve_job_def("probe_job")


def flaky_job() -> dg.JobDefinition:
    return build_defs().resolve_job_def("flaky_job")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(probe_job), instance=instance)
    sys.exit(0 if result.success else 1)
