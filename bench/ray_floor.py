"""The floor under a training step's fixed cost: what Ray and Ray Train cost before any model.

Each run is a fresh Python process that starts the embedded Ray with the product's own options
(`embedded_ray_options`), then runs a Ray Train `TorchTrainer` of 2 workers whose training loop
only reports once, then shuts Ray down. Arms, alternating, `--runs` each:
- `ray_only`: start and shut down Ray, no training;
- `train_v2`: the no-op training (2 workers of half a CPU) on Ray Train's current
  implementation (the one the product uses);
- `train_v1`: the same on Ray Train's earlier implementation (`RAY_TRAIN_V2_ENABLED=0`, which Ray
  deprecates), to show what the newer one's extra controller process costs.

    .venv/bin/python -m bench.ray_floor [--runs 3]

A step's fixed cost (`bench.fixed_cost`) cannot go below its arm's total here; the goal there is
15 s or less.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

GOAL_S = 15.0
ARMS = {"ray_only": {}, "train_v2": {"RAY_TRAIN_V2_ENABLED": "1"},
        "train_v1": {"RAY_TRAIN_V2_ENABLED": "0"}}  # fmt: skip

ONE_RUN = """
import json, sys, tempfile, time
started = time.perf_counter()
import ray
from ml_assets.defs.ray_resource import embedded_ray_options
ray.init(**embedded_ray_options())
connected = time.perf_counter()
trained = connected
if sys.argv[1] != "ray_only":
    import ray.train
    from ray.train.torch import TorchTrainer

    def loop(config):
        import ray.train
        ray.train.report({"done": 1})

    with tempfile.TemporaryDirectory() as storage:
        # Half a CPU each, as the product's plan leaves room for data: v1's trainer actor asks
        # for a CPU of its own, and 2 whole-CPU workers beside it would wait forever.
        scaling = ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5})
        TorchTrainer(loop, scaling_config=scaling,
                     run_config=ray.train.RunConfig(storage_path=storage)).fit()
    trained = time.perf_counter()
ray.shutdown()
ended = time.perf_counter()
print("PHASES " + json.dumps({"init_s": connected - started, "train_s": trained - connected,
                              "shutdown_s": ended - trained, "total_s": ended - started}))
"""


def one_run(arm: str) -> dict:
    env = {**os.environ, **ARMS[arm]}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", ONE_RUN, arm], env=env, capture_output=True,
                         text=True, check=True, timeout=300)  # fmt: skip
    line = next(line for line in out.stdout.splitlines() if line.startswith("PHASES "))
    phases = json.loads(line.removeprefix("PHASES "))
    phases["process_s"] = time.perf_counter() - started  # with Python's and Ray's imports
    return {key: round(value, 2) for key, value in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs per arm, alternating")
    args = parser.parse_args()
    from bench.common import write_result

    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for index in range(args.runs):
        for arm in list(ARMS) if index % 2 == 0 else list(reversed(ARMS)):
            runs[arm].append(one_run(arm))
            print(f"{arm} run {index}: {runs[arm][-1]}", flush=True)
    means = {
        arm: {key: round(statistics.fmean(r[key] for r in arm_runs), 2) for key in arm_runs[0]}
        for arm, arm_runs in runs.items()
    }
    for arm, mean in means.items():
        print(f"{arm} mean: {mean}")
    v2, v1 = means["train_v2"], means["train_v1"]
    print(f"no-op training, v2 / v1: {v2['train_s'] / v1['train_s']:.2f}; "
          f"v2's floor {v2['process_s']:.1f} s against the goal of {GOAL_S:g} s")  # fmt: skip
    write_result(
        "ray_floor",
        {"runs": runs, "means": means, "train_ratio_v2_over_v1": v2["train_s"] / v1["train_s"],
         "goal_s": GOAL_S, "floor_above_goal": v2["process_s"] > GOAL_S},
    )  # fmt: skip


if __name__ == "__main__":
    main()
