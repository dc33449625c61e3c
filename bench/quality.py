"""Demo quality, wall time and peak memory: runs `ml-assets demo` exactly as a user does.

Reports "gap closed" of the holdout log loss and the AUC distance to the
optimum, from the run's own Dagster metadata, plus the wall time and the peak RSS of the whole
process tree (driver, Ray workers, Ray Data), sampled every 0.25 s.
Run: .venv/bin/python -m bench.quality  (about 4 minutes on 2 cores)
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import tree_rss, write_result


def main() -> None:
    demo_args = sys.argv[1:]
    with tempfile.TemporaryDirectory() as directory:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(Path(directory) / "dagster_home"),
            "ML_ASSETS_HOME": str(Path(directory) / "ml_home"),
        }
        command = [str(Path(sys.executable).parent / "ml-assets"), "demo", *demo_args]
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.25)  # sampling interval of the memory probe
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"demo failed with exit code {process.returncode}")
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        import dagster as dg

        from ml_assets.runner import latest_metadata

        with dg.DagsterInstance.get() as instance:
            evaluation = latest_metadata(instance, "model_evaluation")
            published = latest_metadata(instance, "published_model")
            training = latest_metadata(instance, "ranking_model")
    auc_gap = evaluation["optimum_auc"] - evaluation["model_auc"]
    figures = {
        "gap_closed": evaluation["gap_closed"],
        "model_auc": evaluation["model_auc"],
        "optimum_auc": evaluation["optimum_auc"],
        "auc_gap_to_optimum": auc_gap,
        "model_normalized_entropy": evaluation["model_normalized_entropy"],
        "optimum_normalized_entropy": evaluation["optimum_normalized_entropy"],
        "model_calibration": evaluation["model_calibration"],
        "promoted": published["promoted"],
        "training_samples_per_second": training["samples_per_second"],
        "demo_wall_seconds": wall,
        "peak_rss_mib_process_tree": peak / 2**20,
    }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    goals = {"gap_closed >= 0.6": figures["gap_closed"] >= 0.6, "auc within 0.02": auc_gap <= 0.02}
    print(goals)
    write_result("quality", {"demo_args": demo_args, "figures": figures, "goals_met": goals})


if __name__ == "__main__":
    main()
