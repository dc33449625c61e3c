"""Peak memory of the Ray Train path as the data grows: 0.5M, 2M and 8M rows, streamed.

For each size the encoded synthetic files are written by one subprocess (not measured), then a
second subprocess trains one epoch on a fresh local Ray (1 worker x 2 threads) with the window
streamed by Ray Data (`cache_below_bytes=0`: never read into memory whole), while this process
samples the memory of the trainer's whole process tree every 0.5 s: RSS, and PSS, which counts
the shared object store once. Flat memory means the peak does not grow with the rows.
Run: .venv/bin/python -m bench.memory [--sizes 500000 2000000 8000000]  (about 8 minutes)
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import tree_rss, write_result

MIB = 2**20


def generate(directory: Path, rows: int) -> None:
    from ml_assets.ranking.sample_data import encoded_synthetic_days

    schema, files, config = encoded_synthetic_days(directory, rows)
    (directory / "files.json").write_text(
        json.dumps({"files": files, "model": config.to_dict(), "schema": schema.to_dict()})
    )


def fit(directory: Path) -> None:
    import ray

    from ml_assets.ranking.configs import ModelConfig, TrainConfig
    from ml_assets.ranking.distributed import fit_distributed
    from ml_assets.ranking.schema import FeatureSchema
    from ml_assets.ray.scaling import WorkerPlan

    prepared = json.loads((directory / "files.json").read_text())
    schema = FeatureSchema.from_dict(prepared["schema"])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    outcome = fit_distributed(
        prepared["files"],
        model_config=ModelConfig.from_dict(prepared["model"]),
        train_config=TrainConfig(epochs=1, batch_size=1024),
        plan=WorkerPlan(num_workers=1, cpus_per_worker=1, threads_per_worker=2, use_gpu=False),
        dense=schema.dense,
        categorical=schema.categorical,
        label=schema.label,
        checkpoint_root=Path(directory) / "checkpoints",
        run_name="memory",
        cache_below_bytes=0,  # stream: the point of this benchmark
    )
    record = outcome.history[-1].to_dict()
    (directory / "fit.json").write_text(json.dumps(record))
    ray.shutdown()


def measure(directory: Path) -> dict:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.memory", "--fit", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watched = psutil.Process(process.pid)
    peak_rss = peak_pss = 0
    started = time.perf_counter()
    while process.poll() is None:
        peak_rss = max(peak_rss, tree_rss(watched))
        peak_pss = max(peak_pss, tree_rss(watched, proportional=True))
        time.sleep(0.5)  # sampling interval of the memory probe
    if process.returncode != 0:
        raise SystemExit(f"fit failed with exit code {process.returncode}")
    record = json.loads((directory / "fit.json").read_text())
    return {
        "peak_rss_mib": round(peak_rss / MIB),
        "peak_pss_mib": round(peak_pss / MIB),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "samples": record["samples"],
        "samples_per_second": round(record["samples_per_second"]),
        "wait_fraction": round(record["wait_fraction"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000, 8_000_000])
    parser.add_argument("--generate", nargs=2, metavar=("DIR", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--fit", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        return generate(Path(args.generate[0]), int(args.generate[1]))
    if args.fit:
        return fit(Path(args.fit))
    results = {}
    for rows in args.sizes:
        with tempfile.TemporaryDirectory() as directory:
            subprocess.run(
                [sys.executable, "-m", "bench.memory", "--generate", directory, str(rows)],
                check=True,
            )
            results[str(rows)] = measure(Path(directory))
        r = results[str(rows)]
        print(
            f"{rows:>10,} rows: peak RSS {r['peak_rss_mib']:,} MiB, PSS {r['peak_pss_mib']:,} "
            f"MiB, {r['samples_per_second']:,} samples/s, data wait {r['wait_fraction']:.0%}"
        )
    smallest, largest = results[str(min(args.sizes))], results[str(max(args.sizes))]
    growth = largest["peak_pss_mib"] / smallest["peak_pss_mib"]
    print(f"peak PSS, {max(args.sizes):,} vs {min(args.sizes):,} rows: x{growth:.2f} (flat: ~1)")
    write_result(
        "memory",
        {"sizes": results, "pss_growth_largest_over_smallest": growth, "goal": "flat (~1x)"},
    )


if __name__ == "__main__":
    main()
