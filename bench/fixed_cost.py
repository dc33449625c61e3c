"""Fixed cost per materialization: what a training step spends around its training.

`train_and_publish` runs `--runs` times on the embedded default (local Ray, the same small
window each time, one epoch), and each step's X-Ray timeline is split into: request to cluster
ready (Ray started and connected), ready to training started (Ray Train's controller, helper
actors and worker group, the workers' shards read), the training itself (with the time the
trainers waited for batches in it, `data_wait_s`), and training finished to cluster gone (Ray
Train's workers ended, X-Ray's samples and logs collected, Ray shut down: the cluster lives only
while the step's Ray work runs). Fixed cost = the step's cluster time minus its training.
Printed per run and as the mean, with the fixed share of the step; the goal is <= 15 s.

    .venv/bin/python -m bench.fixed_cost [--runs 3] [--rows-per-day 20000]

The `kuberay` figure, with its parts, comes from the kube tier's run-pod training test (its
X-Ray records, printed by `ml_assets_tests/kube/test_training_in_run_pods.py`).
"""

import argparse
import os
import statistics
import tempfile
from pathlib import Path

GOAL_S = 15.0
PHASES = (
    ("to_ready_s", "requested", "connected"),
    ("to_training_s", "connected", "training_started"),
    ("training_s", "training_started", "training_finished"),
    ("after_training_s", "training_finished", "deleted"),
)


def phases(timeline: dict[str, float], epochs: list[dict]) -> dict[str, float]:
    parts = {name: timeline[end] - timeline[start] for name, start, end in PHASES}
    parts["step_cluster_s"] = timeline["deleted"] - timeline["requested"]
    parts["fixed_s"] = parts["step_cluster_s"] - parts["training_s"]
    # Within the training: time the trainers waited for batches (a reader still starting up
    # counts here, not in to_training_s).
    parts["data_wait_s"] = sum(epoch["seconds"] * epoch["wait_fraction"] for epoch in epochs)
    return parts


# The default (each trainer reads its shard and keeps it, the cluster living while the step's
# Ray work runs), side by side with Ray Data reading the window (with one epoch, streaming is
# what Ray Data did for a small window before the workers kept it), and with the cluster
# started at resource setup (`Lifecycle(create=True)`: the in-process run then sets Ray up at
# its start and keeps it through every step). Each arm: training config, cluster created at setup.
ARMS = {
    "workers_read": ({}, False),
    "ray_data": ({"cache_below_mb": 0}, False),
    "at_resource_setup": ({}, True),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs per arm, alternating")
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        os.environ["ML_ASSETS_HOME"] = str(Path(directory) / "ml_home")
        os.environ.pop("ML_ASSETS_STORAGE_ROOT", None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        import dagster as dg

        from bench.common import write_result
        from ml_assets import environment, runner
        from ml_assets.definitions import build_definitions
        from ml_assets.defs.ray_resource import LocalRayCluster, StepLifecycle
        from ml_assets.storage import open_root
        from ml_assets.xray.record import load_records

        definitions = build_definitions("local")
        at_setup = build_definitions(
            "local",
            resources={"ray_cluster": LocalRayCluster(lifecycle=StepLifecycle(create=True))},
        )

        def request(training: dict) -> runner.PipelineRequest:
            return runner.PipelineRequest(
                end_date="2026-11-03", train_days=2, holdout_days=1,
                source={"rows_per_day": args.rows_per_day},
                training={"epochs": 1, "batch_size": 512, **training}, log_level="WARNING",
            )  # fmt: skip

        runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        (Path(directory) / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(directory) / "dagster")) as instance:
            runner.materialize_partitions(instance, request({}), definitions=definitions)
            for index in range(args.runs):
                order = list(ARMS) if index % 2 == 0 else list(reversed(ARMS))
                for arm in order:
                    training, created_at_setup = ARMS[arm]
                    result = runner.train_and_publish(
                        instance,
                        request(training),
                        definitions=at_setup if created_at_setup else definitions,
                    )
                    (record,) = load_records(open_root(environment.xray_root()), result.run_id)
                    parts = phases(record.timeline, record.epochs)
                    runs[arm].append(parts)
                    print(
                        f"{arm} run {index}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
                    )
    means = {
        arm: {key: statistics.fmean(run[key] for run in arm_runs) for key in arm_runs[0]}
        for arm, arm_runs in runs.items()
    }
    for arm, mean in means.items():
        print(f"{arm} mean: " + ", ".join(f"{k} {v:.1f}" for k, v in mean.items()))
    mean = means["workers_read"]
    share = mean["fixed_s"] / mean["step_cluster_s"]
    ratio = mean["step_cluster_s"] / means["ray_data"]["step_cluster_s"]
    print(f"step's cluster time, workers reading / Ray Data reading: {ratio:.2f}")
    setup_ratio = mean["step_cluster_s"] / means["at_resource_setup"]["step_cluster_s"]
    print(f"step's cluster time, cluster per Ray work / per resource setup: {setup_ratio:.2f}")
    print(f"fixed share of the step's cluster time: {share:.2f}; goal fixed <= {GOAL_S:g} s: "
          f"{'met' if mean['fixed_s'] <= GOAL_S else 'not met'}")  # fmt: skip
    write_result(
        "fixed_cost",
        {"mode": "local", "rows_per_day": args.rows_per_day, "epochs": 1, "runs": runs,
         "means": means, "mean": mean, "cluster_time_ratio_vs_ray_data": ratio,
         "cluster_time_ratio_vs_created_at_resource_setup": setup_ratio,
         "fixed_share": share, "goal_s": GOAL_S, "goal_met": mean["fixed_s"] <= GOAL_S},
    )  # fmt: skip


if __name__ == "__main__":
    main()
