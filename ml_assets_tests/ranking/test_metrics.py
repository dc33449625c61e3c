import itertools

import numpy as np
import pytest

from ml_assets.ranking import metrics as m


def pairwise_auc(labels, scores):
    """Independent definition: P(score of a click > score of a non-click), ties count half."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    neg = [s for y, s in zip(labels, scores, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_hand_checked():
    # Pairs (click, non-click): (0.35,0.1) win, (0.35,0.4) loss, (0.8,0.1) win, (0.8,0.4) win.
    assert m.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_auc_all_tied_is_half():
    assert m.roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.3)) == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_definition_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 20, 300) / 20  # many ties
    assert m.roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_log_loss_and_normalized_entropy_hand_checked():
    labels = np.array([1, 0, 0, 0])
    probabilities = np.array([0.5, 0.5, 0.25, 0.25])
    expected = -(np.log(0.5) + np.log(0.5) + 2 * np.log(0.75)) / 4
    assert m.log_loss(labels, probabilities) == pytest.approx(expected)
    base = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    assert m.base_rate_entropy(labels) == pytest.approx(base)
    assert m.normalized_entropy(labels, probabilities) == pytest.approx(expected / base)


def test_predicting_the_base_rate_has_ne_one_and_perfect_calibration():
    rng = np.random.default_rng(0)
    labels = (rng.random(1000) < 0.3).astype(float)
    constant = np.full(1000, labels.mean())
    assert m.normalized_entropy(labels, constant) == pytest.approx(1.0)
    assert m.calibration(labels, constant) == pytest.approx(1.0)


def test_calibration_is_predicted_over_observed():
    assert m.calibration(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.25, 0.25])) == 0.75


def test_metrics_refuse_single_class_holdouts():
    with pytest.raises(ValueError, match="both clicks and non-clicks"):
        m.base_rate_entropy(np.zeros(10))
    with pytest.raises(ValueError, match="at least one click"):
        m.roc_auc(np.ones(5), np.arange(5))


def test_gap_closed():
    assert m.gap_closed(0.45, 0.55, 0.40) == pytest.approx(2 / 3)


def test_calibration_by_slice_orders_by_frequency():
    labels = np.array([1, 0, 1, 1, 0, 0])
    probabilities = np.array([0.5, 0.5, 0.5, 1.0, 0.0, 0.5])
    slices = np.array(["a", "a", "a", "b", "b", "c"])
    result = m.calibration_by_slice(labels, probabilities, slices)
    assert list(result) == ["a", "b", "c"]
    assert result["a"] == {"rows": 3, "clicks": 2, "calibration": pytest.approx(0.75)}
    assert result["b"]["calibration"] == pytest.approx(1.0)
    assert np.isnan(result["c"]["calibration"])  # no clicks: undefined, not zero


def test_only_slices_with_enough_clicks_are_judged():
    by_slice = {
        "a": {"rows": 5000, "clicks": 1200, "calibration": 1.02},
        "b": {"rows": 3000, "clicks": 700, "calibration": 1.61},
        "c": {"rows": 100, "clicks": 20, "calibration": 3.0},  # too few clicks to judge
    }
    bad, judged = m.miscalibrated_slices(by_slice, 0.7, 1.4, min_clicks=200)
    assert bad == {"b": 1.61} and judged == 2
