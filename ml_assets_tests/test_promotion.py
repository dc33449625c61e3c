"""The platform's promotion decision with metrics of either direction: a loss per row (lower is
better) and a recall per request (higher is better)."""

import numpy as np
import pytest

from ml_assets.promotion import GateMetric, decide, paired_bootstrap
from ml_assets.ranking.metrics import log_loss, row_log_loss


def clicks(rows=5000, seed=1):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.6, rows)
    labels = (rng.random(rows) < truth).astype(float)
    return rng, truth, labels, np.clip(truth + rng.normal(0, 0.15, rows), 0.01, 0.99)


def test_the_paired_bootstrap_sees_a_better_model_and_not_an_identical_one():
    _, truth, labels, noisy = clicks()
    better = paired_bootstrap(row_log_loss(labels, truth), row_log_loss(labels, noisy))
    assert better.low <= better.point <= better.high < 0  # the true probabilities win
    assert better.point == pytest.approx(log_loss(labels, truth) / log_loss(labels, noisy) - 1)
    same = paired_bootstrap(row_log_loss(labels, noisy), row_log_loss(labels, noisy))
    assert (same.point, same.low, same.high) == (0, 0, 0)
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap(np.ones(3), np.ones(4))


def recall_metric(challenger, champion):
    return GateMetric("recall", "recall@10", challenger, champion, higher_is_better=True)


def test_a_metric_where_higher_is_better_promotes_the_higher_one():
    rng = np.random.default_rng(0)
    champion = rng.binomial(10, 0.5, 4000) / 10  # recall@10 per request
    challenger = np.clip(champion + rng.binomial(1, 0.3, 4000) / 10, 0, 1)
    options = {"min_relative_gain": 0.01, "resamples": 100, "vetoes": [], "figures": {}}
    promoted = decide(recall_metric(challenger, champion), **options)
    assert promoted.promote and promoted.reasons == [
        f"recall@10 improved by {challenger.mean() / champion.mean() - 1:.3%} with the CI "
        "excluding zero"
    ]
    assert promoted.figures["relative_recall_delta_ci_low"] > 0
    kept = decide(recall_metric(champion, challenger), **options)
    assert not kept.promote and kept.reasons[0].startswith("recall@10 change -")


def test_a_veto_stops_a_better_model_and_a_first_one():
    _, truth, labels, noisy = clicks()
    metric = GateMetric("ne", "NE", row_log_loss(labels, truth), row_log_loss(labels, noisy),
                        higher_is_better=False)  # fmt: skip
    options = {"min_relative_gain": 0.001, "resamples": 50, "figures": {"auc": 0.7}}
    vetoed = decide(metric, vetoes=["calibration 1.2 outside [0.95, 1.05]"], **options)
    assert not vetoed.promote and vetoed.reasons == ["calibration 1.2 outside [0.95, 1.05]"]
    assert vetoed.figures["auc"] == 0.7 and vetoed.figures["relative_ne_delta"] < 0
    assert not decide(None, vetoes=["too few clicks"], **options).promote
    first = decide(None, vetoes=[], **options)
    assert first.promote and "first passing model" in first.reasons[0]
