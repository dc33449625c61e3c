"""Settings from the environment are valid, or the process says which and how to fix it."""

import os

import pytest

from ml_assets import environment
from ml_assets.defs.ray_cleanup import max_age_hours
from ml_assets.environment import sensor_interval_seconds


@pytest.mark.parametrize("raw", ["-1", "0", "nan", "inf", "twelve", ""])
def test_a_max_age_that_would_delete_live_clusters_or_none_is_refused(monkeypatch, raw):
    monkeypatch.setenv("ML_ASSETS_RAY_CLUSTER_MAX_AGE_HOURS", raw)
    with pytest.raises(
        ValueError, match="ML_ASSETS_RAY_CLUSTER_MAX_AGE_HOURS=.* must be a positive"
    ):
        max_age_hours()


def test_settings_parse_and_default(monkeypatch):
    monkeypatch.delenv("ML_ASSETS_RAY_CLUSTER_MAX_AGE_HOURS", raising=False)
    monkeypatch.setenv("ML_ASSETS_SENSOR_INTERVAL_S", "5")
    assert max_age_hours() == 12.0 and sensor_interval_seconds() == 5
    monkeypatch.setenv("ML_ASSETS_SENSOR_INTERVAL_S", "-5")
    with pytest.raises(ValueError, match="ML_ASSETS_SENSOR_INTERVAL_S='-5'"):
        sensor_interval_seconds()


def test_the_partitions_start_where_the_data_starts(monkeypatch):
    import subprocess
    import sys

    code = "from ml_assets.defs.partitions import daily_partitions as p; print(p.start.date())"
    env = {**os.environ, "ML_ASSETS_PARTITIONS_START": "2019-03-01"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2019-03-01", out.stderr
    monkeypatch.setenv("ML_ASSETS_PARTITIONS_START", "March 2019")
    with pytest.raises(ValueError, match="ML_ASSETS_PARTITIONS_START='March 2019' is not a day"):
        environment.partitions_start()
