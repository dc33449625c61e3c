import numpy as np
import pytest

from ml_assets.ranking.gate import GatePolicy, decide_promotion


def holdout(rows=20_000, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.6, rows)
    labels = (rng.random(rows) < truth).astype(float)
    return rng, truth, labels


def test_first_calibrated_model_becomes_champion():
    _, truth, labels = holdout()
    decision = decide_promotion(GatePolicy(), labels, truth, None)
    assert decision.promote and "first passing model" in decision.reasons[0]


def test_first_model_must_be_calibrated():
    _, truth, labels = holdout()
    decision = decide_promotion(GatePolicy(), labels, truth * 0.8, None)
    assert not decision.promote and "calibration" in decision.reasons[0]


def test_clearly_better_challenger_is_promoted():
    rng, truth, labels = holdout()
    champion = np.clip(truth + rng.normal(0, 0.1, len(truth)), 0.01, 0.99)
    decision = decide_promotion(GatePolicy(bootstrap_resamples=100), labels, truth, champion)
    assert decision.promote
    assert decision.figures["relative_ne_delta_ci_high"] < 0


def test_equal_or_worse_challenger_keeps_the_champion():
    rng, truth, labels = holdout()
    worse = np.clip(truth + rng.normal(0, 0.1, len(truth)), 0.01, 0.99)
    same = decide_promotion(GatePolicy(bootstrap_resamples=50), labels, truth, truth)
    assert not same.promote and "not an improvement" in same.reasons[0]
    decision = decide_promotion(GatePolicy(bootstrap_resamples=50), labels, worse, truth)
    assert not decision.promote
    assert any("AUC" in r for r in decision.reasons)


def test_scores_that_moved_between_evaluation_and_the_logged_model_stop_it():
    from ml_assets.ranking.gate import serving_skew

    offline = np.array([0.1, 0.2, 0.3])
    assert serving_skew(offline, offline + 5e-7) == (pytest.approx(5e-7), None)
    gap, reason = serving_skew(offline, offline + np.array([0, 0, 1e-3]))
    assert gap == pytest.approx(1e-3) and "training/serving skew" in (reason or "")
    _, short = serving_skew(offline, offline[:2])
    assert "scored 2 rows where evaluation scored 3" in (short or "")
    assert serving_skew(offline, np.array([0.1, np.nan, 0.3]))[1] is not None  # NaN is skew too
