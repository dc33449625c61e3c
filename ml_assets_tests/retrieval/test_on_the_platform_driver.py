"""The two-tower model through the platform's training driver, unchanged, on a real local Ray:
the ranking model's code path, a different model family."""

import numpy as np
import polars as pl
import pytest
import torch

from ml_assets.promotion import paired_bootstrap
from ml_assets.ray.scaling import WorkerPlan
from ml_assets.retrieval.evaluation import KnownTruth
from ml_assets.retrieval.model import score_catalog
from ml_assets.retrieval.task import TwoTowerTask, log_engagement_share
from ml_assets.retrieval.world import RetrievalWorld, write_days
from ml_assets.training.checkpoints import CHECKPOINT_FILE
from ml_assets.training.config import LoopConfig
from ml_assets.training.driver import fit
from ml_assets_tests.retrieval.test_two_tower import SPEC, config

pytestmark = pytest.mark.slow

PLAN = WorkerPlan(num_workers=2, cpus_per_worker=0.5, threads_per_worker=1, use_gpu=False)


def test_the_two_tower_model_trains_on_the_platform_driver(local_ray, tmp_path):
    world = RetrievalWorld(SPEC)
    days = [f"2026-10-0{d}" for d in range(1, 6)]
    train_files = write_days(world, tmp_path / "requests", days, 12_000)
    (holdout_file,) = write_days(world, tmp_path / "holdout", ["2026-10-09"], 4000)
    engaged = pl.read_parquet(train_files)["ad_id"].to_numpy()
    loop = LoopConfig(epochs=3, batch_size=512, learning_rate=5e-3)
    task = TwoTowerTask(config(), loop, world.catalog, log_engagement_share(engaged, SPEC.ads))
    outcome = fit(task, train_files, plan=PLAN, checkpoint_root=tmp_path / "checkpoints",
                  run_name="retrieval", validation_files=[holdout_file])  # fmt: skip
    assert [record.samples for record in outcome.history] == [60_000] * 3
    full_softmax = [record.validation["log_loss"] for record in outcome.history]
    assert full_softmax[-1] < full_softmax[0] < np.log(SPEC.ads), full_softmax
    assert outcome.history[-1].to_dict()["validation_hit_rate_at_10"] > 0

    state = torch.load(outcome.checkpoint_dir / CHECKPOINT_FILE, weights_only=True)
    assert state["task"]["name"] == "retrieval_model"
    model = task.build_model()
    model.load_state_dict(state["model"])
    holdout = pl.read_parquet(holdout_file)
    users_features, _ = task.to_arrays({c: holdout[c].to_numpy() for c in task.columns})
    users = users_features[:, 0]
    truth = KnownTruth.of(world, users, 10)
    mine = truth.judge_scores(score_catalog(model, users_features, world.catalog))
    popular = truth.judge_popularity(engaged)
    assert paired_bootstrap(mine.recall, popular.recall, resamples=200).low > 0.2
