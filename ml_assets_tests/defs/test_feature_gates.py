"""ranking_model with feature gates on a real Dagster instance and a real local Ray, on the suite's
few_signal world: the model says in its metadata which features it kept in its crosses and deep
tower: the ones the world's crosses need, and few of those that carry nothing."""

import mlflow
import numpy as np
import pytest

from ml_assets import runner
from ml_assets.ranking.schema import CRITEO_CATEGORICAL
from ml_assets.ranking.synthetic import _world
from ml_assets.ranking.worlds import world

pytestmark = pytest.mark.slow


def test_the_model_names_the_features_its_gates_kept_open(instance, ml_home):
    request = runner.PipelineRequest(
        end_date="2026-11-05",
        train_days=3,
        holdout_days=1,
        source={"rows_per_day": 40_000, "world": "few_signal"},
        training={"feature_gate_penalty": 30},
        promotion={"calibration_low": 0.5, "calibration_high": 1.5},
    )
    runner.materialize_partitions(instance, request)
    assert runner.train_and_publish(instance, request).success
    training = runner.latest_metadata(instance, "ranking_model")

    gates = {record.data["feature"]: record.data for record in training["feature_gates"].records}
    assert set(CRITEO_CATEGORICAL) <= set(gates)  # and every dense input before them
    assert training["features_open"] == sum(row["open"] for row in gates.values())
    built = _world(world("few_signal").spec)
    signal = {
        CRITEO_CATEGORICAL[f] for f, effects in enumerate(built.id_effects) if np.any(effects)
    }
    crossed = {CRITEO_CATEGORICAL[f] for pair in built.cross_pairs for f in pair}
    opened = {name for name in CRITEO_CATEGORICAL if gates[name]["open"]}
    # The features the crosses need stay in; most of the 22 that carry nothing are closed.
    noise = set(CRITEO_CATEGORICAL) - signal
    assert crossed <= opened, opened
    assert len(opened & noise) < len(noise) / 2, opened & noise
    assert "data:image/png;base64," in training["feature_gates_plot"]
    store = f"sqlite:///{ml_home / 'mlflow.db'}"
    run = mlflow.MlflowClient(store, store).get_run(training["mlflow_run_id"])
    assert float(run.data.params["feature_gate_penalty"]) == 30.0
