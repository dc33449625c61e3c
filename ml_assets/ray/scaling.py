"""How a Ray cluster's CPUs and GPUs are split between training workers and Ray Data."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerPlan:
    num_workers: int
    cpus_per_worker: float
    threads_per_worker: int
    use_gpu: bool


def plan_workers(
    cluster_cpus: float, cluster_gpus: float, requested_workers: int, data_cpu_share: float
) -> WorkerPlan:
    """Leave a share of the CPUs to Ray Data and give the rest to the training workers.

    2 workers holding all of 2 CPUs leave Ray Data nothing to read with, and Ray Train then hangs
    silently (DESIGN section 5); so the split is derived from the cluster, never hard-coded.
    """
    if requested_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {requested_workers}")
    if not 0 < data_cpu_share < 1:
        raise ValueError(f"data_cpu_share must be between 0 and 1, got {data_cpu_share}")
    # A Ray Data read task asks for 1 CPU: keeping less than that for data hangs the read.
    reserve = max(1.0, cluster_cpus * data_cpu_share)
    trainable = cluster_cpus - reserve
    if trainable <= 0:
        raise ValueError(
            f"the Ray cluster has {cluster_cpus:g} CPU(s): too few to keep {reserve:g} for data "
            "loading and still train; use a larger cluster or a smaller data_cpu_share"
        )
    cpus_per_worker = math.floor(trainable / requested_workers * 1000) / 1000
    return WorkerPlan(
        num_workers=requested_workers,
        cpus_per_worker=cpus_per_worker,
        # Logical CPUs only schedule; threads use the cores. Ray Data's reads are light, so each
        # worker may use its share of all cores (1 worker x 2 threads beats 2 x 1 on 2 cores).
        threads_per_worker=max(1, math.floor(cluster_cpus / requested_workers)),
        use_gpu=cluster_gpus >= requested_workers,
    )
