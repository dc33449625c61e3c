"""`ray_cluster_check`: a job that proves a deployment's Ray path works, in about a minute.

Launch it first on a new deployment (`dagster job launch -j ray_cluster_check`, or from the UI):
the run gets its Ray cluster as any step does (`kuberay`: a RayCluster of the configured profile,
created, used and deleted), sends `ml_assets.ray.cluster_check`'s driver to it, and reports the
cluster's CPUs, GPUs, nodes and the host a task ran on. A failure names the broken link (API
rights, profile, image, token, network) long before a training run would hit it.
"""

import dagster as dg
from dagster_ray import RayResource

from ml_assets.defs.ray_resource import RAY_POOL, run_driver

CHECK = "ml_assets.ray.cluster_check:report"


@dg.op(
    description="Runs a Ray task on the step's cluster through its driver and reports it.",
    pool=RAY_POOL,
)
def check_ray_cluster(context: dg.OpExecutionContext, ray_cluster: RayResource) -> dg.Output:

    report = run_driver(ray_cluster, context, CHECK, {})
    context.log.info(f"{ray_cluster.name}: {report}")
    return dg.Output(report, metadata={"cluster": ray_cluster.name, **report})


@dg.job(description="Check the Ray path of this deployment: cluster, driver, task, teardown.")
def ray_cluster_check():
    check_ray_cluster()
