import numpy as np
import polars as pl
import pytest
import torch

from ml_assets.promotion import paired_bootstrap
from ml_assets.retrieval.evaluation import KnownTruth
from ml_assets.retrieval.model import TwoTower, TwoTowerConfig, in_batch_softmax_loss, score_catalog
from ml_assets.retrieval.task import TwoTowerTask, log_engagement_share
from ml_assets.retrieval.world import RetrievalSpec, RetrievalWorld
from ml_assets.training.config import LoopConfig
from ml_assets.training.epoch import train_one_epoch

SPEC = RetrievalSpec(users=600, ads=150, advertisers=30)


def config(spec=SPEC):
    return TwoTowerConfig((spec.users, spec.segments, spec.regions),
                          (spec.ads, spec.categories, spec.advertisers))  # fmt: skip


def test_another_row_with_the_same_ad_is_not_a_negative():
    torch.manual_seed(0)
    model = TwoTower(config())
    users = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 1, 2]])
    ads = torch.tensor([[10, 1, 2], [11, 3, 4], [10, 1, 2]])  # rows 0 and 2 engaged with ad 10
    log_q = torch.tensor([-2.0, -3.0, -2.0])
    loss = in_batch_softmax_loss(model, users, ads, log_q)
    logits = model(users, ads) - log_q
    by_hand = [
        torch.logsumexp(logits[0, [0, 1]], 0) - logits[0, 0],
        torch.logsumexp(logits[1], 0) - logits[1, 1],
        torch.logsumexp(logits[2, [1, 2]], 0) - logits[2, 2],
    ]
    assert float(loss) == pytest.approx(float(torch.stack(by_hand).mean()), rel=1e-5)


def test_log_q_is_each_ads_log_share_of_engagements_never_minus_infinity():
    log_q = log_engagement_share(np.array([0, 0, 0, 1]), 3)  # ad 2 never engaged with
    assert log_q.tolist() == pytest.approx(np.log([4 / 7, 2 / 7, 1 / 7]).tolist())


def test_a_trained_two_tower_model_beats_popularity_on_held_out_requests():
    torch.manual_seed(0)
    world = RetrievalWorld(SPEC)
    train = pl.concat([world.requests(f"2026-10-0{d}", 12_000) for d in range(1, 6)])
    holdout = world.requests("2026-10-09", 4000)
    loop = LoopConfig(epochs=3, batch_size=512, learning_rate=5e-3)
    engaged = train["ad_id"].to_numpy()
    task = TwoTowerTask(config(), loop, world.catalog, log_engagement_share(engaged, SPEC.ads))
    model = task.build_model()
    task.initialize(model)
    optimizer = task.make_optimizer(model)
    arrays = task.to_arrays({c: train[c].to_numpy() for c in task.columns})
    for epoch in range(loop.epochs):
        batches = task.batches(arrays, loop.batch_size, np.random.default_rng(epoch))
        train_one_epoch(model, optimizer, batches, loop, loss=task.loss, epoch=epoch)
    users_features, ads = task.to_arrays({c: holdout[c].to_numpy() for c in task.columns})
    users = users_features[:, 0]
    truth = KnownTruth.of(world, users, 10)
    mine = truth.judge_scores(score_catalog(model, users_features, world.catalog))
    popular = truth.judge_popularity(engaged)
    change = paired_bootstrap(mine.recall, popular.recall, resamples=200)
    assert change.low > 0.2, change  # far better than popularity, and surely so
    assert mine.means()["ndcg"] > popular.means()["ndcg"]
    metrics = task.validate(model, (users_features, ads))
    assert set(metrics) == {"log_loss", "hit_rate_at_10"}
    assert metrics["log_loss"] < np.log(SPEC.ads)  # better than a uniform guess over the catalog
