"""Blocking checks say when a holdout is too small to judge, with the count and the interval."""

import pytest

from ml_assets.defs.ads_ranking.evaluation.assets import beats_base_rate, calibrated
from ml_assets.ranking.metrics import calibration_interval

THRESHOLDS = {"max_normalized_entropy": 1.0, "calibration_floor": 0.8,
              "calibration_ceiling": 1.25, "min_holdout_clicks": 100}  # fmt: skip


def evaluation(clicks: int, calibration: float, ne: float) -> dict:
    return {"holdout_clicks": clicks, "holdout_rows": 20_000, "model_calibration": calibration,
            "model_normalized_entropy": ne, "thresholds": THRESHOLDS}  # fmt: skip


def test_four_clicks_block_with_the_count_and_the_interval_not_a_bare_threshold():
    small = evaluation(clicks=4, calibration=1.539, ne=1.0132)
    verdict = calibrated(small)
    assert not verdict.passed
    assert "only 4 click(s) in the holdout's 20000 rows, fewer than the 100" in verdict.description
    lower, upper = calibration_interval(1.539, 4)
    assert lower < 1 < upper  # 4 clicks cannot tell 1.54 from perfect
    assert f"[{lower:.2f}, {upper:.2f}] (95%)" in verdict.description
    ne = beats_base_rate(small)
    assert not ne.passed and "only 4 click(s)" in ne.description and "is noise" in ne.description


def test_enough_clicks_are_judged_on_the_thresholds():
    assert calibrated(evaluation(clicks=5_000, calibration=1.02, ne=0.9)).passed
    verdict = beats_base_rate(evaluation(clicks=5_000, calibration=1.02, ne=1.01))
    assert not verdict.passed and verdict.description == "NE 1.0100 vs limit 1.0"


@pytest.mark.parametrize("clicks", [100, 10_000])
def test_the_interval_narrows_with_clicks_and_holds_the_value(clicks):
    lower, upper = calibration_interval(1.1, clicks)
    assert lower < 1.1 < upper
    assert (
        upper - lower
        < calibration_interval(1.1, clicks // 4)[1] - calibration_interval(1.1, clicks // 4)[0]
    )
