"""How a Ray cluster's CPUs and GPUs are split between training workers and Ray Data."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerPlan:
    num_workers: int
    cpus_per_worker: float
    threads_per_worker: int
    use_gpu: bool


def plan_workers(
    node_cpus: Sequence[float], cluster_gpus: float, requested_workers: int, data_cpu_share: float
) -> WorkerPlan:
    """Leave a share of the CPUs to Ray Data and give the rest to the training workers, each of
    whom must fit on one node (`node_cpus`: the CPUs of each node that has any).

    2 workers holding all of 2 CPUs leave Ray Data nothing to read with, and Ray Train then hangs
    silently; so the split is derived from the cluster, never hard-coded. A
    worker asking for more CPUs than any node has would wait for placement forever, so the
    pooled share is cut to what the nodes can hold.
    """
    if requested_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {requested_workers}")
    if not 0 < data_cpu_share < 1:
        raise ValueError(f"data_cpu_share must be between 0 and 1, got {data_cpu_share}")
    nodes = [cpus for cpus in node_cpus if cpus > 0]
    cluster_cpus = sum(nodes)
    # A Ray Data read task asks for 1 CPU: keeping less than that for data hangs the read.
    reserve = max(1.0, cluster_cpus * data_cpu_share)
    trainable = cluster_cpus - reserve
    if trainable <= 0:
        raise ValueError(
            f"the Ray cluster has {cluster_cpus:g} CPU(s): too few to keep {reserve:g} for data "
            "loading and still train; use a larger cluster or a smaller data_cpu_share"
        )
    cpus_per_worker = _milli(
        min(trainable / requested_workers, _largest_fit(nodes, requested_workers))
    )
    return WorkerPlan(
        num_workers=requested_workers,
        cpus_per_worker=cpus_per_worker,
        # Logical CPUs only schedule; threads use the cores. Ray Data's reads are light, so each
        # worker may use its share of all cores (1 worker x 2 threads beats 2 x 1 on 2 cores),
        # but never more cores than one node has.
        threads_per_worker=max(1, math.floor(min(cluster_cpus / requested_workers, max(nodes)))),
        use_gpu=cluster_gpus >= requested_workers,
    )


def _milli(cpus: float) -> float:
    return math.floor(cpus * 1000) / 1000


def _largest_fit(nodes: list[float], workers: int) -> float:
    """The most CPUs per worker with which `workers` workers fit on the nodes: some node's CPUs
    split k ways, for the smallest k that places them all."""
    candidates = sorted({cpus / k for cpus in nodes for k in range(1, workers + 1)}, reverse=True)
    for share in candidates:
        per = _milli(share)
        if per > 0 and sum(math.floor(cpus / per + 1e-9) for cpus in nodes) >= workers:
            return per
    return 0.0
