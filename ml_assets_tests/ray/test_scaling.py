import pytest

from ml_assets.ray.scaling import plan_workers


def test_two_workers_on_two_cpus_leave_a_cpu_for_ray_data():
    plan = plan_workers([2], 0, 2, 0.5)
    assert plan.cpus_per_worker == 0.5 and plan.threads_per_worker == 1 and not plan.use_gpu
    assert 2 - plan.num_workers * plan.cpus_per_worker >= 1.0


def test_one_worker_gets_the_threads():
    plan = plan_workers([2], 0, 1, 0.5)
    assert plan.cpus_per_worker == 1.0 and plan.threads_per_worker == 2


def test_large_cluster_and_gpus():
    plan = plan_workers([8] * 8, 8, 8, 0.25)
    assert plan.cpus_per_worker == 6.0 and plan.use_gpu


def test_a_worker_never_asks_for_more_cpus_than_one_node_has():
    # cpu-large: 8 workers of 16 CPUs; 2 training workers would pool 48 CPUs each.
    plan = plan_workers([16] * 8, 0, 2, 0.25)
    assert plan.cpus_per_worker == 16.0 and plan.threads_per_worker == 16
    # Uneven nodes: the pooled 21.6 would fit only one worker (on the 24-CPU node).
    plan = plan_workers([24, 12, 12], 0, 2, 0.1)
    assert plan.cpus_per_worker == 12.0


def test_the_head_without_cpus_counts_for_nothing():
    assert plan_workers([0, 2], 0, 1, 0.5) == plan_workers([2], 0, 1, 0.5)


def test_too_small_cluster_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="too few"):
        plan_workers([1], 0, 2, 0.5)
    with pytest.raises(ValueError, match="at least 1"):
        plan_workers([4], 0, 0, 0.5)
