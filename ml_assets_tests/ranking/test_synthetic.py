import numpy as np
import pytest

from ml_assets.ranking import metrics as m
from ml_assets.ranking.estimation_floor import estimation_floor
from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL
from ml_assets.ranking.synthetic import TRUE_PROBABILITY, SyntheticSpec, generate_day


def test_layout_is_criteo_shaped_and_truth_is_kept_apart():
    frame, truth = generate_day(SyntheticSpec(), "2026-11-01", 2000)
    assert frame.columns == [LABEL, *CRITEO_DENSE, *CRITEO_CATEGORICAL]
    assert TRUE_PROBABILITY not in frame.columns
    assert truth.name == TRUE_PROBABILITY and len(truth) == frame.height
    assert set(frame[LABEL].unique().to_list()) == {0, 1}


def test_deterministic_by_seed_and_date():
    a, pa = generate_day(SyntheticSpec(seed=3), "2026-11-01", 1000)
    b, pb = generate_day(SyntheticSpec(seed=3), "2026-11-01", 1000)
    c, _ = generate_day(SyntheticSpec(seed=3), "2026-11-02", 1000)
    d, _ = generate_day(SyntheticSpec(seed=4), "2026-11-01", 1000)
    assert a.equals(b) and pa.equals(pb)
    assert not a.equals(c)
    assert not a.equals(d)


def test_base_ctr_hits_target():
    for target in (0.05, 0.25):
        frame, truth = generate_day(SyntheticSpec(base_ctr=target), "2026-11-03", 50_000)
        assert truth.mean() == pytest.approx(target, abs=0.01)
        assert frame[LABEL].mean() == pytest.approx(target, abs=0.01)


def test_optimum_matches_its_definition():
    """Clicks are Bernoulli(p): the log loss of p converges to E[H(p)], the optimum, and no
    constant predictor beats it."""
    frame, truth = generate_day(SyntheticSpec(), "2026-11-04", 200_000)
    labels = frame[LABEL].to_numpy().astype(float)
    p = truth.to_numpy()
    expected_entropy = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    assert m.log_loss(labels, p) == pytest.approx(expected_entropy, abs=0.004)
    assert m.log_loss(labels, p) < m.base_rate_entropy(labels)
    # The ground truth is informative, as on Criteo-like data (AUC ~0.84, NE ~0.72).
    assert 0.8 < m.roc_auc(labels, p) < 0.9
    assert 0.6 < m.normalized_entropy(labels, p) < 0.8


def test_ids_are_zipf_distributed():
    frame, _ = generate_day(SyntheticSpec(), "2026-11-05", 50_000)
    counts = frame["C1"].drop_nulls().value_counts(sort=True)["count"].to_numpy()
    # Heavy head: the most frequent id is far more common than the median one.
    assert counts[0] > 10 * np.median(counts)


def test_the_estimation_floor_falls_with_more_training_rows_towards_the_optimum():
    floors = [estimation_floor(n, holdout_rows=50_000) for n in (500_000, 2_000_000, 10**9)]
    gaps = [f.log_loss_gap for f in floors]
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-4
    assert floors[0].auc_gap > floors[1].auc_gap > 0.001 > abs(floors[2].auc_gap)
    # At 2M rows the floor is a few thousandths: far below the base rate's gap to the optimum.
    assert 0.001 < gaps[1] < 0.02
