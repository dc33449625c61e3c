"""The click model's Ray driver: a search's trials see the window's counts scaled to the rows
they train on, so a prior or a gate penalty means the same in a trial as in the final training."""

import pytest

from ml_assets.ranking.configs import TrainConfig
from ml_assets.ranking.model import FeatureGates, SharedEmbedding
from ml_assets.ranking.sample_data import encoded_synthetic_window
from ml_assets.ranking.train_driver import _click_task, _resolver


def test_a_trial_spreads_its_priors_and_gate_penalty_over_the_rows_it_trains_on(
    tmp_path, local_ray
):
    window = encoded_synthetic_window(tmp_path, 2_000, ("2026-10-01", "2026-10-02", "2026-10-03"))
    window.vocabulary.save(tmp_path / "vocabulary.json")
    schema = window.encoded_schema
    request = {
        "storage_root": str(tmp_path),
        "vocabulary": str(tmp_path / "vocabulary.json"),
        "model_config": window.model_config.to_dict(),
        "train_config": TrainConfig(feature_gate_penalty=30.0).to_dict(),
        "dense": list(schema.dense),
        "categorical": list(schema.categorical),
        "label": schema.label,
    }
    at = _resolver(request)
    seen = {}
    for rows in (None, 4_000):  # the whole window (6,000 rows), then a trial's first two days
        task = _click_task(request, at, counted_rows=rows)
        model = task.build_model()
        task.initialize(model)
        (gates,) = [m for m in model.modules() if isinstance(m, FeatureGates)]
        embedding = next(m for m in model.modules() if type(m) is SharedEmbedding)
        assert embedding.inverse_counts is not None
        seen[rows] = (gates.per_row, embedding.inverse_counts.clone())
    assert seen[None][0] == pytest.approx(30.0 / 6_000)
    assert seen[4_000][0] == pytest.approx(30.0 / 4_000)
    # An id seen c times in the window is expected c * 4/6 times in the trial's rows.
    frequent = seen[None][1] < 1.0 / 100
    ratio = seen[4_000][1][frequent] / seen[None][1][frequent]
    assert ratio.numpy() == pytest.approx(6_000 / 4_000, rel=1e-5)
