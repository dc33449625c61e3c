"""Candidate retrieval on its synthetic world (retrieval.world): the two-tower model trained by
the platform's driver (training.driver.fit, the same code path as the ranking model) on one
local Ray, against the popularity baseline and the optimum (each request's true top K).

Per request on the held-out day: recall@K (the share of the true top K retrieved) and NDCG@K
(gains: the true probabilities). Model against popularity, paired bootstrap on per-request
recall. Goals: beat popularity with 95% confidence, and close at least 70% of the recall@K gap
from popularity to the optimum. Throughput side by side: the same task's epoch through Ray
Train against a plain in-process loop on the same cores. Lines: each pipeline's ML package and
Dagster folder (ml_assets/retrieval + defs/retrieval against ml_assets/ranking + defs/ads_ranking).
Run: .venv/bin/python -m bench.retrieval [--rows 350000]   (about 3 minutes on 2 cores)
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import write_result
from ml_assets.promotion import paired_bootstrap
from ml_assets.ray.scaling import WorkerPlan
from ml_assets.retrieval.evaluation import KnownTruth
from ml_assets.retrieval.metrics import gap_closed
from ml_assets.retrieval.model import TwoTowerConfig, score_catalog
from ml_assets.retrieval.task import TwoTowerTask, log_engagement_share
from ml_assets.retrieval.world import RetrievalSpec, RetrievalWorld, write_days
from ml_assets.training.config import LoopConfig

PACKAGE = Path(__file__).resolve().parents[1] / "ml_assets"
TRAIN_DAYS = [f"2026-10-{day:02d}" for day in range(1, 8)]
HOLDOUT_DAY = "2026-10-08"


def lines(folder: Path) -> int:
    return sum(len(f.read_text().splitlines()) for f in folder.rglob("*.py"))


def in_process_throughput(task: TwoTowerTask, arrays, cores: int) -> float:
    """One epoch of the same task in this process: what Ray Train's throughput is held to."""
    import torch

    from ml_assets.training.epoch import train_one_epoch

    torch.set_num_threads(cores)
    model = task.build_model()
    task.initialize(model)
    stats = train_one_epoch(model, task.make_optimizer(model),
                            task.batches(arrays, task.loop.batch_size, np.random.default_rng(0)),
                            task.loop, loss=task.loss, epoch=0)  # fmt: skip
    return stats.samples_per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=350_000, help="training requests")
    parser.add_argument("--holdout-rows", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    import ray
    import torch

    from ml_assets.training.driver import fit

    world = RetrievalWorld(RetrievalSpec())
    spec = world.spec
    cores = os.cpu_count() or 1
    plan = WorkerPlan(num_workers=1, cpus_per_worker=1, threads_per_worker=cores, use_gpu=False)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        started = time.perf_counter()
        train_files = write_days(world, root / "requests", TRAIN_DAYS, args.rows // len(TRAIN_DAYS))
        (holdout_file,) = write_days(world, root / "holdout", [HOLDOUT_DAY], args.holdout_rows)
        print(f"world written in {time.perf_counter() - started:.0f} s", flush=True)
        training = pl.read_parquet(train_files)
        engaged = training["ad_id"].to_numpy()
        config = TwoTowerConfig(
            user_cardinalities=(spec.users, spec.segments, spec.regions),
            ad_cardinalities=(spec.ads, spec.categories, spec.advertisers),
        )
        loop = LoopConfig(epochs=3, batch_size=1024, learning_rate=5e-3)
        task = TwoTowerTask(config, loop, world.catalog, log_engagement_share(engaged, spec.ads),
                            k=args.k)  # fmt: skip
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        try:
            started = time.perf_counter()
            outcome = fit(task, train_files, plan=plan, checkpoint_root=root / "checkpoints",
                          run_name="retrieval", validation_files=[holdout_file])  # fmt: skip
            fit_seconds = time.perf_counter() - started
        finally:
            ray.shutdown()
        state = torch.load(outcome.checkpoint_dir / "checkpoint.pt", weights_only=True)
        model = task.build_model()
        model.load_state_dict(state["model"])
        holdout = pl.read_parquet(holdout_file)
        users_features, _ = task.to_arrays({c: holdout[c].to_numpy() for c in task.columns})
        plain = in_process_throughput(
            task, task.to_arrays({c: training[c].to_numpy() for c in task.columns}), cores
        )
    users = users_features[:, 0]
    truth = KnownTruth.of(world, users, args.k)
    model_quality = truth.judge_scores(score_catalog(model, users_features, world.catalog))
    popularity = truth.judge_popularity(engaged)
    change = paired_bootstrap(model_quality.recall, popularity.recall, resamples=1000)
    closed = gap_closed(model_quality.means()["recall"], popularity.means()["recall"])
    ray_rate = outcome.history[-1].samples_per_second
    results = {
        "recall_at_k": {"model": model_quality.means()["recall"],
                        "popularity": popularity.means()["recall"], "optimum": 1.0},
        "ndcg_at_k": {"model": model_quality.means()["ndcg"],
                      "popularity": popularity.means()["ndcg"], "optimum": 1.0},
        "recall_gap_closed": closed,
        "recall_vs_popularity": {"relative_change": change.point, "ci_low": change.low,
                                 "ci_high": change.high},
        "epochs": [record.to_dict() | {"curve": None} for record in outcome.history],
        "fit_seconds": round(fit_seconds, 1),
        "samples_per_second": {"ray_train": ray_rate, "in_process": plain,
                               "ray_over_in_process": ray_rate / plain},
        "samples_per_second_per_core": ray_rate / cores,
        "lines": {"retrieval_ml": lines(PACKAGE / "retrieval"),
                  "ranking_ml": lines(PACKAGE / "ranking"),
                  "retrieval_pipeline": lines(PACKAGE / "defs" / "retrieval"),
                  "ads_pipeline": lines(PACKAGE / "defs" / "ads_ranking")},
    }  # fmt: skip
    goals = {
        "beats popularity with 95% confidence": change.low > 0,
        "closes >= 70% of the recall gap from popularity to the optimum": closed >= 0.70,
    }
    print(
        f"recall@{args.k}: model {results['recall_at_k']['model']:.3f}, popularity "
        f"{results['recall_at_k']['popularity']:.3f}, optimum 1; gap closed {closed:.1%}; "
        f"vs popularity {change.point:+.1%} (95% CI {change.low:+.1%}..{change.high:+.1%})"
    )
    print(
        f"NDCG@{args.k}: model {results['ndcg_at_k']['model']:.3f}, popularity "
        f"{results['ndcg_at_k']['popularity']:.3f}"
    )
    print(
        f"throughput: Ray Train {ray_rate:,.0f}/s ({ray_rate / cores:,.0f} per core), in "
        f"process {plain:,.0f}/s, ratio {ray_rate / plain:.2f}"
    )
    count = results["lines"]
    print(f"lines: retrieval {count['retrieval_ml']} ML + {count['retrieval_pipeline']} Dagster, "
          f"ads {count['ranking_ml']} ML + {count['ads_pipeline']} Dagster")  # fmt: skip
    print(goals)
    write_result("retrieval" if args.rows == 350_000 else f"retrieval-{args.rows}",
                 {"args": vars(args), "world": spec.__dict__, "model_config": config.to_dict(),
                  "loop": loop.to_dict(), **results, "goals_met": goals})  # fmt: skip


if __name__ == "__main__":
    main()
