"""X-Ray overhead: training throughput with X-Ray collection on vs off, side by side.

The same Ray Train fit (same rows, model, batches, 1 worker x all cores) runs alternately
without and with X-Ray's per-node probes sampling every second (the resource's default), six
times each way (off, on, off, on, ...), so drift in machine load hits both arms alike. Reported:
steady in-loop samples/s per arm (mean over runs) and their ratio; the goal is < 2% overhead.
Run: .venv/bin/python -m bench.xray_overhead [--rows 400000] [--epochs 3] [--pairs 6]
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.common import write_result
from bench.training import prepare, ray_train, steady
from ml_assets.ranking.configs import TrainConfig
from ml_assets.ray.scaling import WorkerPlan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    train_config = TrainConfig(epochs=args.epochs, batch_size=1024)
    plan = WorkerPlan(1, cores / 2, cores, False)
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as directory:
        schema, files, model_config = prepare(Path(directory), args.rows)
        for pair in range(args.pairs):
            for arm in ("off", "on"):
                result = ray_train(schema, files, model_config, train_config, plan,
                                   Path(directory) / "ckpt", xray=arm == "on")  # fmt: skip
                runs[arm].append(result)
                print(f"pair {pair} xray {arm:3s}: {steady(result):,.0f} samples/s "
                      f"({result['xray_samples']} samples)")  # fmt: skip
    off = float(np.mean([steady(r) for r in runs["off"]]))
    on = float(np.mean([steady(r) for r in runs["on"]]))
    paired = [steady(b) / steady(a) for a, b in zip(runs["off"], runs["on"], strict=True)]
    # The probe's own CPU time as a share of the machine's CPU time during the fit: what X-Ray
    # takes from a CPU-bound trainer, measured directly rather than through a noisy throughput.
    cpu_share = float(
        np.mean([r["xray_probe_cpu_seconds"] / (r["wall_seconds"] * cores) for r in runs["on"]])
    )
    summary = {
        "rows": args.rows,
        "epochs": args.epochs,
        "pairs": args.pairs,
        "samples_per_second_off": off,
        "samples_per_second_on": on,
        "ratio_on_to_off": on / off,
        "overhead_percent": 100 * (1 - on / off),
        "paired_ratios": paired,
        "probe_cpu_share_percent": 100 * cpu_share,
        "runs": runs,
    }
    print(f"\nX-Ray on/off throughput ratio {on / off:.4f} (overhead {100 * (1 - on / off):.2f}%);"
          f" paired ratios {', '.join(f'{r:.3f}' for r in paired)};"
          f" probe CPU share of the machine {100 * cpu_share:.3f}%")  # fmt: skip
    write_result("xray_overhead", summary)


if __name__ == "__main__":
    main()
