import numpy as np
import pytest

from ml_assets.retrieval.metrics import (
    gap_closed,
    hit_rate_at_k,
    ndcg_at_k,
    popularity_top_k,
    recall_at_k,
)
from ml_assets.retrieval.world import AD_COLUMNS, USER_COLUMNS, RetrievalSpec, RetrievalWorld, top_k

SMALL = RetrievalSpec(users=400, ads=120, advertisers=30)


def test_a_day_depends_on_the_seed_and_the_date_only():
    world = RetrievalWorld(SMALL)
    day = world.requests("2026-10-01", 2000)
    assert day.columns == [*USER_COLUMNS, *AD_COLUMNS]
    assert day.equals(RetrievalWorld(SMALL).requests("2026-10-01", 2000))
    assert not day.equals(world.requests("2026-10-02", 2000))
    # Each row's features are its user's and its ad's, as the catalog has them.
    rows = day.to_numpy()
    assert (rows[:, :3] == world.user_features(rows[:, 0])).all()
    assert (rows[:, 3:] == world.catalog[rows[:, 3]]).all()


def test_users_engage_with_their_true_top_ads_as_often_as_the_affinity_says():
    world = RetrievalWorld(SMALL)
    day = world.requests("2026-10-01", 20_000)
    users, engaged = day["user_id"].to_numpy(), day["ad_id"].to_numpy()
    truth = world.true_top_k(users, 10)
    probabilities = world.choice_probabilities(users)
    assert (np.diff(np.take_along_axis(world.affinity(users), truth, 1), axis=1) <= 0).all()
    expected = np.take_along_axis(probabilities, truth, 1).sum(1).mean()
    observed = hit_rate_at_k(truth, engaged)
    assert observed == pytest.approx(expected, abs=0.015)
    assert expected > 10 / SMALL.ads * 3  # tastes are sharp enough to be worth retrieving


def test_recall_and_ndcg_on_known_cases():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    predicted = np.array([[3, 2, 9], [7, 8, 9]])
    assert recall_at_k(predicted, truth).tolist() == pytest.approx([2 / 3, 0])
    probabilities = np.array([[0.0, 0.1, 0.5, 0.4], [0.7, 0.1, 0.1, 0.1]])
    best = top_k(probabilities, 2)
    assert best.tolist() == [[2, 3], [0, 1]]
    assert ndcg_at_k(best, probabilities).tolist() == pytest.approx([1.0, 1.0])
    swapped = ndcg_at_k(best[:, ::-1], probabilities)
    assert (swapped < 1).all() and swapped[0] == pytest.approx(
        (0.4 + 0.5 / np.log2(3)) / (0.5 + 0.4 / np.log2(3))
    )
    assert popularity_top_k(np.array([3, 3, 1, 3, 1, 0]), 5, 2).tolist() == [3, 1]
    assert gap_closed(0.8, 0.2) == pytest.approx(0.75)
