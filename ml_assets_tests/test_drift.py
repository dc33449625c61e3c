import numpy as np
import polars as pl
import pytest

from ml_assets.drift import DriftColumns, categorical_psi, dense_psi, feature_drift, psi
from ml_assets.ranking.features import transform
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

SPEC = SyntheticSpec()
COLUMNS = DriftColumns(dense=SPEC.schema.dense, categorical=SPEC.schema.categorical)


def features(date: str, rows: int = 20_000) -> pl.DataFrame:
    frame, _ = generate_day(SPEC, date, rows)
    return transform(frame, SPEC.schema)


def test_psi_is_zero_for_equal_histograms_and_grows_with_the_shift():
    base = np.array([25, 25, 25, 25.0])
    assert psi(base, base * 3) == pytest.approx(0.0)
    small, large = psi(base, np.array([30, 25, 25, 20.0])), psi(base, np.array([70, 10, 10, 10.0]))
    assert 0 < small < 0.1 < 0.25 < large
    # An empty bin on either side stays finite (the proportion floor).
    assert np.isfinite(psi(np.array([50, 50, 0.0]), np.array([40, 40, 20.0])))


def test_dense_psi_notices_a_scaled_feature_but_not_resampling():
    rng = np.random.default_rng(0)
    reference = pl.Series("x", rng.lognormal(1.0, 1.0, 50_000))
    same = pl.Series("x", rng.lognormal(1.0, 1.0, 20_000))
    shifted = pl.Series("x", rng.lognormal(1.6, 1.0, 20_000))
    assert dense_psi(reference, same, 10) < 0.01
    assert dense_psi(reference, shifted, 10) > 0.25


def test_categorical_psi_counts_unseen_values_as_other():
    reference = pl.Series("c", ["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    assert categorical_psi(reference, reference.sample(400, seed=1), 5) < 0.01
    new_values = pl.Series("c", ["a"] * 200 + ["z"] * 800)  # "z" was never seen in training
    assert categorical_psi(reference, new_values, 5) > 1.0


def test_synthetic_days_do_not_drift_and_a_shifted_day_does():
    reference = pl.concat([features(d) for d in ("2026-11-01", "2026-11-02", "2026-11-03")])
    same = features("2026-11-04")
    report = feature_drift(reference, same, COLUMNS, threshold=0.2)
    assert len(report.psi) == 39 and not report.crossed, report.summary()
    assert report.max_psi < 0.05
    shifted = same.with_columns(
        pl.col("I2") + 1.5, pl.concat_str(pl.lit("new-"), pl.col("C3")).alias("C3")
    )
    report = feature_drift(reference, shifted, COLUMNS, threshold=0.2)
    assert report.crossed and report.drifted[:2] == sorted(["I2", "C3"], key=report.psi.get)[::-1]
    assert "I2" in report.summary() and "threshold 0.2" in report.summary()


def test_drift_needs_rows_on_both_sides():
    with pytest.raises(ValueError, match="rows on both sides"):
        feature_drift(
            features("2026-11-01", 100).head(0),
            features("2026-11-02", 100),
            COLUMNS,
            threshold=0.2,
        )
