"""The ads ranking pipeline's automation: the platform's new-data sensor, drift sensor and
retrain schedule, built from its description (`jobs.ADS_RANKING`)."""

from ml_assets.defs.ads_ranking.features.assets import features_file
from ml_assets.defs.ads_ranking.jobs import ADS_RANKING
from ml_assets.defs.automation.drift import drift_sensor
from ml_assets.defs.automation.new_data import new_data_sensor
from ml_assets.defs.automation.schedule import retrain_schedule
from ml_assets.drift import DriftColumns

new_impressions = new_data_sensor(ADS_RANKING, name="new_impressions")
feature_drift = drift_sensor(
    ADS_RANKING,
    name="feature_drift",
    day_file=features_file,
    source_key="source",
    columns=lambda source: DriftColumns(
        dense=source.feature_schema.dense, categorical=source.feature_schema.categorical
    ),
)
daily_retrain = retrain_schedule(ADS_RANKING, name="daily_retrain")
