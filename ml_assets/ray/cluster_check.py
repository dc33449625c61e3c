"""A Ray driver that proves a cluster can do work: what the cluster offers and where a task ran.

Run it like any step's driver (`run_driver(ray_cluster, context,
"ml_assets.ray.cluster_check:report", {...})`): on KubeRay it runs as a Ray job on the head, so a
report with a worker pod's host name shows the whole path (Jobs API, token, scheduling on a
worker) works.
"""

import socket


def report(request: dict) -> dict:
    """The cluster's CPUs, GPUs and alive nodes, and the host a task asking for `task_cpus`
    (default 0.5) ran on. Raises when the cluster has fewer CPUs than `min_cpus`: a cluster that
    came up smaller than its profile should fail the step that needs it, not run it slowly."""
    import ray

    resources = ray.cluster_resources()
    cpus = resources.get("CPU", 0.0)
    wanted = float(request.get("min_cpus", 0))
    if cpus < wanted:
        raise RuntimeError(
            f"the cluster offers {cpus:g} CPUs, fewer than the {wanted:g} asked for; check its "
            "pods' CPU requests and Ray's num-cpus in the profile"
        )

    @ray.remote(num_cpus=float(request.get("task_cpus", 0.5)))
    def where() -> str:
        return socket.gethostname()

    return {
        "cpus": cpus,
        "gpus": resources.get("GPU", 0.0),
        "nodes": sum(1 for node in ray.nodes() if node["Alive"]),
        "task_host": ray.get(where.remote(), timeout=float(request.get("timeout_s", 120))),
    }
