"""Fixed cost per materialization: what a training step spends around its training.

`train_and_publish` runs `--runs` times on the embedded default (local Ray, the same small
window each time, one epoch), and each step's X-Ray timeline is split into: request to cluster
ready (Ray started and connected), ready to training started (Ray Train's worker group, Ray
Data's plan, the first batch), the training itself, and training finished to cluster gone (the
model saved and logged, Ray shut down). Fixed cost = the step's cluster time minus its training.
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


def phases(timeline: dict[str, float]) -> dict[str, float]:
    parts = {name: timeline[end] - timeline[start] for name, start, end in PHASES}
    parts["step_cluster_s"] = timeline["deleted"] - timeline["requested"]
    parts["fixed_s"] = parts["step_cluster_s"] - parts["training_s"]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
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
        from ml_assets.storage import open_root
        from ml_assets.xray.record import load_records

        definitions = build_definitions("local")
        request = runner.PipelineRequest(
            end_date="2026-11-03", train_days=2, holdout_days=1,
            source={"rows_per_day": args.rows_per_day},
            training={"epochs": 1, "batch_size": 512}, log_level="WARNING",
        )  # fmt: skip
        runs = []
        (Path(directory) / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(directory) / "dagster")) as instance:
            runner.materialize_partitions(instance, request, definitions=definitions)
            for index in range(args.runs):
                result = runner.train_and_publish(instance, request, definitions=definitions)
                (record,) = load_records(open_root(environment.xray_root()), result.run_id)
                parts = phases(record.timeline)
                runs.append(parts)
                print(f"run {index}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    mean = {key: statistics.fmean(run[key] for run in runs) for key in runs[0]}
    share = mean["fixed_s"] / mean["step_cluster_s"]
    print("mean: " + ", ".join(f"{k} {v:.1f}" for k, v in mean.items()))
    print(f"fixed share of the step's cluster time: {share:.2f}; goal fixed <= {GOAL_S:g} s: "
          f"{'met' if mean['fixed_s'] <= GOAL_S else 'not met'}")  # fmt: skip
    write_result(
        "fixed_cost",
        {"mode": "local", "rows_per_day": args.rows_per_day, "epochs": 1, "runs": runs,
         "mean": mean, "fixed_share": share, "goal_s": GOAL_S,
         "goal_met": mean["fixed_s"] <= GOAL_S},
    )  # fmt: skip


if __name__ == "__main__":
    main()
