"""All benchmarks, one after another (each writes bench/results/<name>.json)."""

from bench import (
    cluster_bringup,
    features,
    fixed_cost,
    fixed_cost_kuberay,
    leak,
    leak_run_pods,
    learning_curve,
    memory,
    optimizer,
    quality,
    ray_floor,
    retrieval,
    sensor_memory,
    training,
    tuning,
    worlds,
    xray_overhead,
)

BENCHMARKS = (
    features,
    optimizer,
    training,
    memory,
    quality,
    learning_curve,
    worlds,
    tuning,
    retrieval,
    leak,
    leak_run_pods,
    cluster_bringup,
    xray_overhead,
    sensor_memory,
    fixed_cost,
    fixed_cost_kuberay,
    ray_floor,
)


def main() -> None:
    for module in BENCHMARKS:
        print(f"== {module.__name__}")
        module.main()


if __name__ == "__main__":
    main()
