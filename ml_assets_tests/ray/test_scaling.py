import pytest

from ml_assets.ray.scaling import plan_workers


def test_two_workers_on_two_cpus_leave_a_cpu_for_ray_data():
    plan = plan_workers(2, 0, 2, 0.5)
    assert plan.cpus_per_worker == 0.5 and plan.threads_per_worker == 1 and not plan.use_gpu
    assert 2 - plan.num_workers * plan.cpus_per_worker >= 1.0


def test_one_worker_gets_the_threads():
    plan = plan_workers(2, 0, 1, 0.5)
    assert plan.cpus_per_worker == 1.0 and plan.threads_per_worker == 2


def test_large_cluster_and_gpus():
    plan = plan_workers(64, 8, 8, 0.25)
    assert plan.cpus_per_worker == 6.0 and plan.use_gpu


def test_too_small_cluster_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="too few"):
        plan_workers(1, 0, 2, 0.5)
    with pytest.raises(ValueError, match="at least 1"):
        plan_workers(4, 0, 0, 0.5)
